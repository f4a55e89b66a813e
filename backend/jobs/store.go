package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// store keeps each job's record in Redis, in the hash <prefix>job:<id>:
//
//	kind, created_at, webhook_url   fixed at submission
//	queue, task_id                  the asynq task currently carrying the job
//	status, progress, error,        the job's state, written by the worker
//	started_at, finished_at         (and by Cancel)
//	worker                          id of the worker running it, if any
//	takeovers                       how often a dead worker's job was requeued
//
// plus the set <prefix>running of jobs that are running and the liveness
// keys <prefix>worker:<id>. Every state change is conditioned on task_id,
// so a run that lost its job to a takeover (its worker was presumed dead)
// cannot overwrite the new run's state: a Lua script, or for the final
// state a WATCHed MULTI/EXEC that also records the job's webhook
// deliveries. The scripts build keys from the prefix, so this needs a
// single Redis, not a cluster.
type store struct {
	rdb    redis.UniversalClient
	prefix string
}

// record is a job plus its bookkeeping fields.
type record struct {
	job       Job
	queue     string
	taskID    string
	worker    string
	takeovers int
}

func (s store) jobKey(id string) string    { return s.prefix + "job:" + id }
func (s store) runningKey() string         { return s.prefix + "running" }
func (s store) workerKey(id string) string { return s.prefix + "worker:" + id }
func formatTime(t time.Time) string        { return t.UTC().Format(time.RFC3339Nano) }
func ttlMillis(d time.Duration) string     { return strconv.FormatInt(d.Milliseconds(), 10) }

// create writes a new job's record.
func (s store) create(ctx context.Context, job Job, queue string, ttl time.Duration) error {
	key := s.jobKey(job.ID)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key,
			"kind", job.Kind, "created_at", formatTime(job.CreatedAt), "webhook_url", job.WebhookURL,
			"queue", queue, "task_id", job.ID, "status", string(StatusQueued), "progress", "0", "takeovers", "0")
		p.PExpire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("jobs: recording %s: %w", job.ID, err)
	}
	return nil
}

// forget deletes a record whose task could not be enqueued.
func (s store) forget(ctx context.Context, id string) { s.rdb.Del(ctx, s.jobKey(id)) }

// load reads a record; ErrNotFound when there is none.
func (s store) load(ctx context.Context, id string) (record, error) {
	return s.loadFrom(ctx, s.rdb, id)
}

// loadFrom is load through c (a transaction's connection).
func (s store) loadFrom(ctx context.Context, c redis.Cmdable, id string) (record, error) {
	m, err := c.HGetAll(ctx, s.jobKey(id)).Result()
	if err != nil {
		return record{}, fmt.Errorf("jobs: reading %s: %w", id, err)
	}
	if len(m) == 0 {
		return record{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	r := record{
		job: Job{
			ID: id, Kind: m["kind"], Status: Status(m["status"]), Error: m["error"],
			WebhookURL: m["webhook_url"],
		},
		queue: m["queue"], taskID: m["task_id"], worker: m["worker"],
	}
	r.job.Progress, _ = strconv.ParseFloat(m["progress"], 64)
	r.takeovers, _ = strconv.Atoi(m["takeovers"])
	r.job.CreatedAt, _ = time.Parse(time.RFC3339Nano, m["created_at"])
	r.job.StartedAt = parseTimePtr(m["started_at"])
	r.job.FinishedAt = parseTimePtr(m["finished_at"])
	return r, nil
}

func parseTimePtr(v string) *time.Time {
	if v == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil
	}
	return &t
}

// finishedLua is a Lua test for a final status, shared by the scripts.
const finishedLua = `local function final(s) return s == 'completed' or s == 'failed' or s == 'cancelled' end
`

// startScript: KEYS meta, running; ARGV task_id, worker, started_at, job id.
var startScript = redis.NewScript(finishedLua + `
local m = redis.call('HMGET', KEYS[1], 'task_id', 'status')
if m[1] ~= ARGV[1] or final(m[2]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'worker', ARGV[2], 'started_at', ARGV[3], 'progress', '0', 'error', '')
redis.call('SADD', KEYS[2], ARGV[4])
return 1`)

// start marks the job running on worker; false when taskID is not the
// job's current task or the job is already final.
func (s store) start(ctx context.Context, id, taskID, worker string, now time.Time) (bool, error) {
	n, err := startScript.Run(ctx, s.rdb, []string{s.jobKey(id), s.runningKey()}, taskID, worker, formatTime(now), id).Int()
	if err != nil {
		return false, fmt.Errorf("jobs: starting %s: %w", id, err)
	}
	return n == 1, nil
}

// progressScript: KEYS meta; ARGV task_id, progress.
var progressScript = redis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'task_id', 'status')
if m[1] ~= ARGV[1] or m[2] ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
return 1`)

func (s store) progress(ctx context.Context, id, taskID string, p float64) error {
	return progressScript.Run(ctx, s.rdb, []string{s.jobKey(id)}, taskID, strconv.FormatFloat(p, 'f', -1, 64)).Err()
}

// requeueScript: KEYS meta, running; ARGV task_id, error, job id.
var requeueScript = redis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'task_id', 'status')
if m[1] ~= ARGV[1] or m[2] ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued', 'worker', '', 'error', ARGV[2])
redis.call('SREM', KEYS[2], ARGV[3])
return 1`)

// requeue puts a running job back to queued after a failed or interrupted
// run; false when the job is not running under taskID (cancelled, taken
// over).
func (s store) requeue(ctx context.Context, id, taskID, msg string) (bool, error) {
	n, err := requeueScript.Run(ctx, s.rdb, []string{s.jobKey(id), s.runningKey()}, taskID, msg, id).Int()
	if err != nil {
		return false, fmt.Errorf("jobs: requeueing %s: %w", id, err)
	}
	return n == 1, nil
}

// recorder records the deliveries of a job that became final inside the
// transaction that makes it final (tx), and returns what to do once the
// transaction ran. nil records nothing.
type recorder func(ctx context.Context, tx redis.Pipeliner, job Job) (after func(), err error)

// finalizeTries bounds the optimistic retries of finalize; only writes to
// the job's own record (progress, a cancel) make it retry.
const finalizeTries = 16

// finalize makes job id final with status and msg if may accepts its
// current record, and records its deliveries (rec) in the same MULTI/EXEC:
// a job is never final without its deliveries recorded. The record is
// WATCHed, so a concurrent change (a cancel, a takeover) makes it read and
// decide again. It returns the record as it is after the call and whether
// this call made it final.
func (s store) finalize(ctx context.Context, id string, may func(record) bool, status Status, msg string, now time.Time, retention time.Duration, rec recorder) (record, bool, error) {
	key := s.jobKey(id)
	for range finalizeTries {
		var r record
		var after func()
		applied := false
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			var err error
			if r, err = s.loadFrom(ctx, tx, id); err != nil {
				return err
			}
			if !may(r) {
				return nil
			}
			r.job.Status, r.job.Error, r.job.FinishedAt, r.worker = status, msg, ptr(now), ""
			if status == StatusCompleted {
				r.job.Progress = 1
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, key, "status", string(status), "error", msg, "finished_at", formatTime(now), "worker", "")
				if status == StatusCompleted {
					p.HSet(ctx, key, "progress", "1")
				}
				p.SRem(ctx, s.runningKey(), id)
				p.PExpire(ctx, key, retention)
				if rec == nil {
					return nil
				}
				var err error
				after, err = rec(ctx, p, r.job)
				return err
			})
			applied = err == nil
			return err
		}, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue // the record changed under us: decide again
		}
		if err != nil {
			return record{}, false, fmt.Errorf("jobs: finishing %s: %w", id, err)
		}
		if applied && after != nil {
			after()
		}
		return r, applied, nil
	}
	return record{}, false, fmt.Errorf("jobs: finishing %s: record kept changing", id)
}

// finish makes the job final; ok is false (and nothing changes) when taskID
// is not the job's task or the job was already final.
func (s store) finish(ctx context.Context, id, taskID string, status Status, msg string, now time.Time, retention time.Duration, rec recorder) (Job, bool, error) {
	r, ok, err := s.finalize(ctx, id, func(r record) bool { return r.taskID == taskID && !r.job.Status.Finished() },
		status, msg, now, retention, rec)
	return r.job, ok, err
}

// cancel makes an unfinished job cancelled; changed is false when it was
// already final (the record is returned either way).
func (s store) cancel(ctx context.Context, id string, now time.Time, retention time.Duration, rec recorder) (record, bool, error) {
	return s.finalize(ctx, id, func(r record) bool { return !r.job.Status.Finished() },
		StatusCancelled, "cancelled by request", now, retention, rec)
}

// beat refreshes a worker's liveness key.
func (s store) beat(ctx context.Context, worker string, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.workerKey(worker), "1", ttl).Err(); err != nil {
		return fmt.Errorf("jobs: worker heartbeat: %w", err)
	}
	return nil
}

// orphan is a running job whose worker's liveness key is gone.
type orphan struct {
	jobID, worker, taskID, queue string
	takeovers                    int
}

// orphansScript: KEYS running; ARGV job key prefix, worker key prefix.
// It also drops ids of jobs no longer running from the set.
var orphansScript = redis.NewScript(`
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local m = redis.call('HMGET', ARGV[1] .. id, 'status', 'worker', 'task_id', 'queue', 'takeovers')
  if m[1] ~= 'running' then
    redis.call('SREM', KEYS[1], id)
  elseif not m[2] or m[2] == '' or redis.call('EXISTS', ARGV[2] .. m[2]) == 0 then
    table.insert(out, id)
    table.insert(out, m[2] or '')
    table.insert(out, m[3] or '')
    table.insert(out, m[4] or '')
    table.insert(out, m[5] or '0')
  end
end
return out`)

func (s store) orphans(ctx context.Context) ([]orphan, error) {
	vals, err := orphansScript.Run(ctx, s.rdb, []string{s.runningKey()}, s.prefix+"job:", s.prefix+"worker:").StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("jobs: listing running jobs: %w", err)
	}
	var out []orphan
	for i := 0; i+4 < len(vals); i += 5 {
		n, _ := strconv.Atoi(vals[i+4])
		out = append(out, orphan{jobID: vals[i], worker: vals[i+1], taskID: vals[i+2], queue: vals[i+3], takeovers: n})
	}
	return out, nil
}

// claimScript: KEYS meta, running, worker key; ARGV worker, old task id,
// new task id, job id.
var claimScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local m = redis.call('HMGET', KEYS[1], 'status', 'worker', 'task_id')
if m[1] ~= 'running' or m[2] ~= ARGV[1] or m[3] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued', 'worker', '', 'task_id', ARGV[3], 'progress', '0', 'error', 'worker lost; job requeued')
redis.call('HINCRBY', KEYS[1], 'takeovers', 1)
redis.call('SREM', KEYS[2], ARGV[4])
return 1`)

// claim moves an orphaned job to a new task id, if it is still orphaned.
func (s store) claim(ctx context.Context, o orphan, newTaskID string) (bool, error) {
	n, err := claimScript.Run(ctx, s.rdb, []string{s.jobKey(o.jobID), s.runningKey(), s.workerKey(o.worker)},
		o.worker, o.taskID, newTaskID, o.jobID).Int()
	if err != nil {
		return false, fmt.Errorf("jobs: claiming %s: %w", o.jobID, err)
	}
	return n == 1, nil
}

// unclaim undoes a claim whose new task could not be enqueued, so the next
// reaper round tries again.
func (s store) unclaim(ctx context.Context, o orphan) {
	key := s.jobKey(o.jobID)
	_, _ = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "status", string(StatusRunning), "worker", o.worker, "task_id", o.taskID)
		p.HIncrBy(ctx, key, "takeovers", -1)
		p.SAdd(ctx, s.runningKey(), o.jobID)
		return nil
	})
}

// claimStalledScript: KEYS meta; ARGV old task id, new task id.
var claimStalledScript = redis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'status', 'task_id')
if m[1] ~= 'queued' or m[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'task_id', ARGV[2], 'error', 'worker lost before starting the job; requeued')
redis.call('HINCRBY', KEYS[1], 'takeovers', 1)
return 1`)

// claimStalled moves a queued job whose task oldTask stalled (taken by a
// worker that died before starting it) to newTask, if it still waits on
// oldTask.
func (s store) claimStalled(ctx context.Context, id, oldTask, newTask string) (bool, error) {
	n, err := claimStalledScript.Run(ctx, s.rdb, []string{s.jobKey(id)}, oldTask, newTask).Int()
	if err != nil {
		return false, fmt.Errorf("jobs: claiming stalled %s: %w", id, err)
	}
	return n == 1, nil
}

// unclaimStalled undoes claimStalled when its new task could not be
// enqueued, so the next round tries again.
func (s store) unclaimStalled(ctx context.Context, id, oldTask string) {
	key := s.jobKey(id)
	_, _ = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "task_id", oldTask)
		p.HIncrBy(ctx, key, "takeovers", -1)
		return nil
	})
}
