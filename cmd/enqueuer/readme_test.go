package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
)

// readmeTables are, per job file the README shows, the tables it needs,
// as its comments describe them: each example is planned against a
// database of its own holding them.
var readmeTables = map[string]string{
	"orders-status": `CREATE FUNCTION map_status(int) RETURNS text LANGUAGE sql IMMUTABLE AS $$SELECT 's' || $1$$;
		CREATE TABLE public.orders (id bigint PRIMARY KEY, status text, legacy_state int NOT NULL);
		INSERT INTO public.orders (id, legacy_state) SELECT g, g % 5 FROM generate_series(1, 1000) g;
		CREATE TABLE jobs (state text)`,
	"lines-total": `CREATE TABLE public.order_lines (tenant_id int, order_id bigint, line_no int, qty int NOT NULL, unit_price numeric NOT NULL, total numeric,
			PRIMARY KEY (tenant_id, order_id, line_no));
		INSERT INTO public.order_lines SELECT g % 7, g, 1, 2, 1.5, NULL FROM generate_series(1, 1000) g`,
	"customers-country": `CREATE TABLE public.customers (email text COLLATE "en-US-x-icu" PRIMARY KEY, country text);
		INSERT INTO public.customers SELECT 'c' || g || '@example.com', NULL FROM generate_series(1, 1000) g`,
	"events-source": `CREATE TABLE public.events (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), source text);
		INSERT INTO public.events (source) SELECT NULL FROM generate_series(1, 1000)`,
	"orders-region": `CREATE TABLE public.orders (tenant_id int, id bigint, region text, PRIMARY KEY (tenant_id, id));
		INSERT INTO public.orders SELECT CASE WHEN g % 10 = 0 THEN g % 7 ELSE 3 END, g, NULL FROM generate_series(1, 1000) g`,
	"events-day": `CREATE TABLE public.events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, day date);
		CREATE INDEX ON public.events (created_at);
		INSERT INTO public.events SELECT g, timestamptz '2024-05-01' + g * interval '1 minute', NULL FROM generate_series(1, 1000) g`,
	"orders-v2-copy": `CREATE FUNCTION map_status(int) RETURNS text LANGUAGE sql IMMUTABLE AS $$SELECT 's' || $1$$;
		CREATE TABLE public.orders (id bigint PRIMARY KEY, legacy_state int NOT NULL, amount numeric NOT NULL);
		INSERT INTO public.orders SELECT g, g % 5, g FROM generate_series(1, 1000) g;
		CREATE TABLE public.orders_v2 (id bigint PRIMARY KEY, status text, total_cents numeric)`,
	"events-retention": `CREATE TABLE public.events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL);
		INSERT INTO public.events SELECT g, timestamptz '2024-08-01' + g * interval '1 hour' FROM generate_series(1, 1000) g`,
}

// TestReadmeExamplesPlan: every job file the README shows plans as
// written (enqueuer plan: it validates the file, reads the table's key
// range, and EXPLAINs both statements, exit 2 unless they use the key's
// index) against a database holding the tables its comments describe.
func TestReadmeExamplesPlan(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(raw), -1)
	seen := map[string]bool{}
	for _, b := range blocks {
		m := regexp.MustCompile(`(?m)^name: (\S+)`).FindStringSubmatch(b[1])
		if m == nil {
			continue
		}
		name, body := m[1], b[1]
		ddl, ok := readmeTables[name]
		require.True(t, ok, "README job file %s has no tables in readmeTables: add them", name)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db, url := ebbtest.Database(t)
			_, err := db.Pool.Exec(context.Background(), ddl)
			require.NoError(t, err)
			dir := t.TempDir()
			file := filepath.Join(dir, name+".yaml")
			require.NoError(t, os.WriteFile(file, []byte(body), 0o600))
			b := &bundle{t: t, dir: dir, env: map[string]string{
				"DATABASE_URL": url, "REDIS_URL": ebbtest.RedisURL(),
				// The first example's prometheus rule needs a server to
				// name; plan never asks it.
				"PROMETHEUS_URL": "http://127.0.0.1:9",
			}}
			code, out, errOut := b.run("plan", "-job", file)
			require.Equal(t, 0, code, "enqueuer plan of the README's %s:\n%s\n%s", name, out, errOut)
			require.Contains(t, strings.ToLower(out), "index")
		})
	}
	require.Len(t, seen, len(readmeTables), "readmeTables names a job file the README no longer shows")
}
