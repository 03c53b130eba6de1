package dial_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/ebbtest"
)

// secret is the password in every bad address below; no error may show it.
const secret = "s3cret"

func TestRedisErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
		want []string
	}{
		{
			name: "unreachable",
			url:  "redis://:" + secret + "@127.0.0.1:1/0",
			want: []string{"cannot reach Redis at redis://127.0.0.1:1/0", "REDIS_URL", "connection refused", "start it or point REDIS_URL at it"},
		},
		{
			name: "unreachable with user",
			url:  "redis://app:" + secret + "@127.0.0.1:1/0",
			want: []string{"cannot reach Redis at redis://127.0.0.1:1/0"},
		},
		{
			name: "bad port",
			url:  "redis://:" + secret + "@127.0.0.1:notaport/0",
			want: []string{"not a valid redis:// or rediss:// URL", "invalid port"},
		},
		{
			name: "bad database number",
			url:  "redis://:" + secret + "@127.0.0.1:6379/notadb",
			want: []string{"REDIS_URL redis://127.0.0.1:6379/notadb is not a valid redis:// or rediss:// URL", "invalid database number"},
		},
		{
			name: "not a redis URL",
			url:  "http://:" + secret + "@127.0.0.1:6379/0",
			want: []string{"not a valid redis:// or rediss:// URL"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rdb, err := dial.Redis(context.Background(), tc.url, "")
			require.Error(t, err)
			require.Nil(t, rdb)
			require.NotContains(t, err.Error(), secret)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestPostgresErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dsn  string
		want []string
	}{
		{
			name: "unreachable",
			dsn:  "postgres://u:" + secret + "@127.0.0.1:1/db",
			want: []string{"cannot reach PostgreSQL at postgres://127.0.0.1:1/db (SHOP_DSN)", "connection refused", "is it running"},
		},
		{
			name: "unreachable keyword/value DSN",
			dsn:  "host=127.0.0.1 port=1 user=u password=" + secret + " dbname=db",
			want: []string{"cannot reach PostgreSQL", "(SHOP_DSN)", "connection refused"},
		},
		{
			name: "password in the query string",
			dsn:  "postgres://u@127.0.0.1:1/db?password=" + secret,
			want: []string{"cannot reach PostgreSQL at postgres://127.0.0.1:1/db (SHOP_DSN)"},
		},
		{
			name: "bad port",
			dsn:  "postgres://u:" + secret + "@127.0.0.1:notaport/db",
			want: []string{"SHOP_DSN is not a valid PostgreSQL DSN", "invalid port"},
		},
		{
			name: "bad port in keyword/value DSN",
			dsn:  "host=127.0.0.1 port=notaport user=u password=" + secret + " dbname=db",
			want: []string{"SHOP_DSN is not a valid PostgreSQL DSN", "invalid port"},
		},
		{
			name: "bad sslmode",
			dsn:  "postgres://u:" + secret + "@127.0.0.1:5432/db?sslmode=bogus",
			want: []string{"SHOP_DSN is not a valid PostgreSQL DSN", "sslmode is invalid"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool, err := dial.PostgresDSN(context.Background(), "SHOP_DSN", tc.dsn)
			require.Error(t, err)
			require.Nil(t, pool)
			require.NotContains(t, err.Error(), secret)
			require.NotContains(t, err.Error(), "%!", "a formatting verb without an argument")
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestPostgresEmptyEnv(t *testing.T) {
	t.Parallel()
	// A name no environment sets; t.Setenv would forbid t.Parallel.
	env := "EBB_TEST_UNSET_" + ebbtest.Suffix()
	pool, err := dial.Postgres(context.Background(), env)
	require.Nil(t, pool)
	require.ErrorContains(t, err, "environment variable "+env+" is empty")
	require.ErrorContains(t, err, "set it to the database's DSN")

	var pools dial.Pools
	t.Cleanup(pools.Close)
	_, err = pools.Get(context.Background(), env)
	require.ErrorContains(t, err, env+" is empty")
	n := 0
	pools.Each(func(string, *pgxpool.Pool) { n++ })
	require.Zero(t, n, "a failed open is not cached")
}

func TestReachable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		pool, err := dial.PostgresDSN(ctx, "EBB_TEST_DATABASE_URL", ebbtest.DatabaseURL())
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		var app string
		require.NoError(t, pool.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&app))
		require.Equal(t, "ebb", app, "so DBAs can tell ebb's sessions apart in pg_stat_activity")
		// Over TCP, a worker that vanished from the network loses its
		// session (and its locks) within about 20 s.
		var userTimeout, idle string
		require.NoError(t, pool.QueryRow(ctx, "SELECT current_setting('tcp_user_timeout'), current_setting('tcp_keepalives_idle')").Scan(&userTimeout, &idle))
		require.Equal(t, []string{"20000", "10"}, []string{userTimeout, idle}, "milliseconds and seconds")
	})

	t.Run("Redis", func(t *testing.T) {
		t.Parallel()
		rdb, err := dial.Redis(ctx, ebbtest.RedisURL(), "")
		require.NoError(t, err)
		t.Cleanup(func() { _ = rdb.Close() })
		require.NoError(t, rdb.Ping(ctx).Err())
	})
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"redis://:" + secret + "@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"rediss://app:" + secret + "@cache.internal:6380/2", "rediss://cache.internal:6380/2"},
		{"postgres://u:" + secret + "@db:5432/shop?sslmode=require&password=" + secret, "postgres://db:5432/shop"},
		{"postgresql://u@db/shop", "postgresql://db/shop"},
		{"host=db user=u password=" + secret, "(unparsable address)"},
		{"redis://:" + secret + "@127.0.0.1:notaport/0", "(unparsable address)"},
		{"", "(unparsable address)"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			got := dial.Redact(tc.in)
			require.Equal(t, tc.want, got)
			require.NotContains(t, got, secret)
		})
	}
}
