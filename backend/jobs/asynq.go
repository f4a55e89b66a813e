package jobs

import (
	"context"
	"errors"

	"github.com/hibiken/asynq"
)

// Asynq is the Redis-backed Queue (client and inspector side). With a
// non-nil runner it also runs an in-process worker.
type Asynq struct {
	redisOpt asynq.RedisConnOpt
	runner   Runner
	opts     AsynqOptions
}

// NewAsynq connects to Redis. runner may be nil for an API process that
// only submits and reads jobs while RunWorker processes run them.
func NewAsynq(redisOpt asynq.RedisConnOpt, runner Runner, opts AsynqOptions) (*Asynq, error) {
	return nil, errors.New("jobs: NewAsynq: not implemented yet")
}

// RunWorker runs jobs from Redis at redisURL until ctx is done
// (`contentguard backend --worker`).
func RunWorker(ctx context.Context, redisURL string, runner Runner, opts AsynqOptions) error {
	return errors.New("jobs: RunWorker: not implemented yet")
}
