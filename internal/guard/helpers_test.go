package guard_test

import (
	"encoding/json"

	"github.com/ebbhq/ebb/internal/ledger"
)

type ledgerControls = ledger.Controls

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
