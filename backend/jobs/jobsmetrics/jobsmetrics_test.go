package jobsmetrics

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/contentguard/contentguard/backend/jobs"
	"github.com/contentguard/contentguard/internal/polltest"
)

// TestMetricsFromARealQueue runs jobs through a memory queue observed by
// this package and checks the exposition with promtool.
func TestMetricsFromARealQueue(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg); err == nil {
		t.Fatal("registering twice must fail")
	}
	q, err := jobs.NewMemory(func(ctx context.Context, kind string, in json.RawMessage, p func(float64)) (json.RawMessage, error) {
		if kind == jobs.KindDedup {
			return nil, jobs.ErrPermanent
		}
		return in, nil
	}, jobs.MemoryOptions{Options: jobs.Options{Observer: obs}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close(context.Background())
	var ids []string
	for _, k := range []string{jobs.KindAnalyze, jobs.KindAnalyze, jobs.KindDedup} {
		j, err := q.Submit(context.Background(), jobs.Spec{Kind: k})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	for _, id := range ids {
		if !polltest.Until(10*time.Second, func() bool {
			j, _ := q.Get(context.Background(), id)
			return j.Status.Finished()
		}) {
			t.Fatalf("job %s did not finish", id)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	enc := expfmt.NewEncoder(&text, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	out := text.String()
	for _, want := range []string{
		`jobs_submitted_total{kind="analyze"} 2`,
		`jobs_submitted_total{kind="dedup"} 1`,
		`jobs_completed_total{kind="analyze",status="completed"} 2`,
		`jobs_completed_total{kind="dedup",status="failed"} 1`,
		`job_duration_seconds_count{kind="analyze"} 2`,
		`jobs_queue_depth 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q:\n%s", want, out)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed for this test: %v", err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, msg)
	}
}
