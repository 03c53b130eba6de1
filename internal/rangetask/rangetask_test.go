package rangetask_test

import (
	"context"
	"math"
	"testing"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/rangetask"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    rangetask.Payload
		wantErr string
	}{
		{name: "full", body: `{"job":"orders","range":3,"lo":10,"hi":20}`, want: rangetask.Payload{Job: "orders", Range: 3, Lo: keyspace.Int(10), Hi: keyspace.Int(20)}},
		{name: "single key", body: `{"job":"orders","range":0,"lo":5,"hi":5}`, want: rangetask.Payload{Job: "orders", Lo: keyspace.Int(5), Hi: keyspace.Int(5)}},
		{name: "int64 bounds", body: `{"job":"j","range":1,"lo":-9223372036854775808,"hi":9223372036854775807}`,
			want: rangetask.Payload{Job: "j", Range: 1, Lo: keyspace.Int(math.MinInt64), Hi: keyspace.Int(math.MaxInt64)}},
		{name: "not json", body: `{not json`, wantErr: "decode range task"},
		{name: "unknown field", body: `{"job":"j","range":0,"lo":1,"hi":2,"sql":"DROP TABLE t"}`, wantErr: `unknown field "sql"`},
		{name: "no job", body: `{"range":0,"lo":1,"hi":2}`, wantErr: "missing job"},
		{name: "inverted", body: `{"job":"j","range":0,"lo":3,"hi":2}`, wantErr: "inverted bounds"},
		{name: "empty", body: ``, wantErr: "decode range task"},
		{name: "no bounds", body: `{"job":"j","range":0}`, wantErr: "missing or inverted bounds"},
		{name: "text bounds", body: `{"job":"j","range":0,"lo":"a","hi":"b"}`,
			want: rangetask.Payload{Job: "j", Lo: keyspace.NewKey("a"), Hi: keyspace.NewKey("b")}},
		{name: "composite bounds", body: `{"job":"j","range":0,"lo":["1","a"],"hi":["1","b"]}`,
			want: rangetask.Payload{Job: "j", Lo: keyspace.NewKey("1", "a"), Hi: keyspace.NewKey("1", "b")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := rangetask.Decode([]byte(tc.body))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestTaskID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id      string
		job     string
		rangeID int64
		ok      bool
	}{
		{id: "orders:r0", job: "orders", rangeID: 0, ok: true},
		{id: "orders:r42", job: "orders", rangeID: 42, ok: true},
		{id: "a:rb:r7", job: "a:rb", rangeID: 7, ok: true},
		{id: "j:r-1", job: "j", rangeID: -1, ok: true},
		{id: "j:r9223372036854775807", job: "j", rangeID: math.MaxInt64, ok: true},
		{id: "orders"},
		{id: ":r1"},
		{id: "orders:r"},
		{id: "orders:rx"},
		{id: "orders:r01"},
		{id: "orders:r+1"},
		{id: "orders:r1 "},
		{id: "orders:r99999999999999999999"},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			t.Parallel()
			job, rangeID, err := rangetask.ParseTaskID(tc.id)
			if !tc.ok {
				require.ErrorIs(t, err, rangetask.ErrNotRangeTaskID)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.job, job)
			require.Equal(t, tc.rangeID, rangeID)
			require.Equal(t, tc.id, rangetask.TaskID(job, rangeID))
		})
	}
}

func TestNewTask(t *testing.T) {
	t.Parallel()
	p := rangetask.Payload{Job: "orders", Range: 4, Lo: keyspace.Int(100), Hi: keyspace.Int(199)}
	task, id, err := rangetask.NewTask(p)
	require.NoError(t, err)
	require.Equal(t, rangetask.TaskType, task.Type())
	require.Equal(t, "orders:r4", id)
	got, err := rangetask.Decode(task.Payload())
	require.NoError(t, err)
	require.Equal(t, p, got)
}

func TestValidQueue(t *testing.T) {
	t.Parallel()
	for q, ok := range map[string]bool{"ebb": true, "ebb-orders_2": true, "": false, "a{b": false, "{ebb}": false} {
		err := rangetask.ValidQueue(q)
		if ok {
			require.NoError(t, err, q)
		} else {
			require.ErrorIs(t, err, rangetask.ErrBadQueue, q)
		}
	}
}

// TestEnqueuer: a range enqueued twice is one task, with the range task's
// options, and the second enqueue is no error.
func TestEnqueuer(t *testing.T) {
	t.Parallel()
	r := ebbtest.Redis(t)
	client := asynq.NewClientFromRedisClient(r.Client)
	t.Cleanup(func() { _ = client.Close() })
	insp := asynq.NewInspectorFromRedisClient(r.Client)
	t.Cleanup(func() { _ = insp.Close() })
	enqueue := rangetask.Enqueuer(client, nil)
	p := rangetask.Payload{Job: "orders", Range: 2, Lo: keyspace.Int(1), Hi: keyspace.Int(9)}
	require.NoError(t, enqueue(context.Background(), r.Queue, p))
	require.NoError(t, enqueue(context.Background(), r.Queue, p))
	info, err := insp.GetTaskInfo(r.Queue, rangetask.TaskID(p.Job, p.Range))
	require.NoError(t, err)
	require.Equal(t, rangetask.TaskType, info.Type)
	require.Equal(t, 10, info.MaxRetry)
	got, err := rangetask.Decode(info.Payload)
	require.NoError(t, err)
	require.Equal(t, p, got)
	pending, err := insp.ListPendingTasks(r.Queue)
	require.NoError(t, err)
	require.Len(t, pending, 1)
}

// FuzzPayload: every payload Decode accepts encodes back to one it decodes
// to the same value, and every valid payload survives Encode then Decode.
func FuzzPayload(f *testing.F) {
	f.Add(`{"job":"orders","range":3,"lo":10,"hi":20}`, "orders", int64(0), int64(1), int64(2))
	f.Add(`{"job":"j","range":-1,"lo":-9223372036854775808,"hi":9223372036854775807}`, "j", int64(-1), int64(math.MinInt64), int64(math.MaxInt64))
	f.Add(`{"job":"","range":0,"lo":0,"hi":0}`, "", int64(0), int64(0), int64(0))
	f.Add(`{"job":"j","job":"k","range":0,"lo":0,"hi":0}`, "a:r1", int64(5), int64(9), int64(3))
	f.Add(`null`, "\xff", int64(math.MaxInt64), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, body, job string, rangeID, lo, hi int64) {
		if p, err := rangetask.Decode([]byte(body)); err == nil {
			b, err := p.Encode()
			require.NoError(t, err)
			again, err := rangetask.Decode(b)
			require.NoError(t, err)
			require.Equal(t, p, again)
		}
		p := rangetask.Payload{Job: job, Range: rangeID, Lo: keyspace.Int(lo), Hi: keyspace.Int(hi)}
		b, err := p.Encode()
		require.NoError(t, err)
		got, err := rangetask.Decode(b)
		// json replaces invalid UTF-8 with U+FFFD; job names are ASCII.
		if job == "" || lo > hi || !utf8.ValidString(job) {
			if err == nil {
				require.NotEqual(t, p, got)
			}
			return
		}
		require.NoError(t, err)
		require.Equal(t, p, got)
	})
}

// FuzzTaskID: TaskID and ParseTaskID are inverses: any job and range ID
// round-trip, and any string that parses is exactly what TaskID makes.
func FuzzTaskID(f *testing.F) {
	f.Add("orders", int64(0), "orders:r0")
	f.Add("a:rb", int64(math.MaxInt64), "a:rb:r7")
	f.Add("j:r", int64(math.MinInt64), "j:r-0")
	f.Add("x", int64(-1), ":r:r1")
	f.Fuzz(func(t *testing.T, job string, rangeID int64, id string) {
		if job != "" {
			gotJob, gotRange, err := rangetask.ParseTaskID(rangetask.TaskID(job, rangeID))
			require.NoError(t, err)
			require.Equal(t, job, gotJob)
			require.Equal(t, rangeID, gotRange)
		}
		if j, r, err := rangetask.ParseTaskID(id); err == nil {
			require.NotEmpty(t, j)
			require.Equal(t, id, rangetask.TaskID(j, r))
		}
	})
}
