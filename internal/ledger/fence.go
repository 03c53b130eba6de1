package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrFenced means a newer worker has taken the range over: the write that
// returned it (a checkpoint, a done mark, a split) was refused, and the
// worker that tried must stop working on the range.
var ErrFenced = errors.New("ledger: range taken over by a newer fencing token")

// FenceKey is a hash: range ID → the newest fencing token handed out for
// it. The tokens come from the database's fence table, where every claim
// of a range raises its token (batch.Executor.Claim); this hash mirrors
// the highest one, so the ledger can refuse an older worker's checkpoint.
func (l *Ledger) FenceKey(job string) string { return l.jobKey(job, "fence") }

// Fence records token as the range's newest fencing token. It returns
// ErrFenced when the hash already holds a newer one: a claim after this
// worker's took the range while this one was on its way here. A token
// lower than the stored one can also be a database whose fence table was
// recreated, which is why the database, not Redis, hands tokens out.
func (l *Ledger) Fence(ctx context.Context, job string, rangeID, token int64) error {
	ok, err := raiseFence.Run(ctx, l.rdb, []string{l.FenceKey(job)}, id(rangeID), token).Int()
	if err != nil {
		return fmt.Errorf("record fencing token %d of %s range %d: %w", token, job, rangeID, err)
	}
	if ok == 0 {
		return fmt.Errorf("%s range %d: %w", job, rangeID, ErrFenced)
	}
	return nil
}

// raiseFence sets a range's token unless a newer one is stored.
//
//	KEYS[1] fence hash, ARGV[1] range ID, ARGV[2] token
//	returns 1, or 0 when a newer token is stored
var raiseFence = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if cur > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// fencedLua is the check the ledger's writing scripts share: with a
// token (> 0), a newer stored token refuses the write, and the script
// returns refused. It expects the fence hash, the range ID and the token
// in fenceKey, rangeArg, tokenArg.
func fencedLua(fenceKey, rangeArg, tokenArg, refused string) string {
	return `local tok = tonumber(` + tokenArg + `)
if tok > 0 and tonumber(redis.call('HGET', ` + fenceKey + `, ` + rangeArg + `) or '0') > tok then
  return ` + refused + `
end
`
}
