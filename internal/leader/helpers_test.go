package leader_test

import (
	"fmt"
	"testing"

	"github.com/ebbhq/ebb/internal/ebbtest"
)

// knobTable creates a one-value table holding v, for a sql rule that reads
// "SELECT v FROM <knob>"; tests turn it with UPDATE <knob> SET v = ….
func knobTable(t testing.TB, db *ebbtest.DB, v float64) string {
	t.Helper()
	k := db.Table("knob")
	db.Exec(t, "CREATE TABLE "+k+" (v float8 NOT NULL)")
	db.Exec(t, fmt.Sprintf("INSERT INTO %s VALUES (%g)", k, v))
	return k
}
