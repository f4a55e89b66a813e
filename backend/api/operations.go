package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/contentguard/contentguard/backend/analysis"
	"github.com/contentguard/contentguard/backend/cache"
)

// Input limits (see docs/backend.md). The request body limit (1 MiB by
// default) applies on top of these.
const (
	// MaxTextChars bounds one text field, in code points. The original
	// refused more than 10,000; analysis is linear here, so we allow more,
	// except for the quadratic sequence similarity (analysis.MaxSequenceChars, 10,000).
	MaxTextChars = 100_000
	// MaxBatchJobs bounds the jobs of one synchronous batch.
	MaxBatchJobs = 100
	// MaxDedupDocuments bounds the documents of one synchronous dedup.
	MaxDedupDocuments = 10_000
	// MaxDocumentIDLength bounds a dedup document ID, in bytes.
	MaxDocumentIDLength = 256
	// DefaultThreshold is the similarity threshold when none is sent.
	DefaultThreshold = 0.8
)

// Operation kinds: metric labels, span names, batch operations, job kinds.
const (
	KindAnalyze    = "analyze"
	KindSimilarity = "similarity"
	KindQuality    = "quality"
	KindBatch      = "batch"
	KindDedup      = "dedup"
)

// analyzeRequest is POST /analyze.
type analyzeRequest struct {
	Content   *string  `json:"content"`
	Threshold *float64 `json:"threshold"`
	// Repeated-passage search (an addition; off by default).
	RepeatedPassages bool `json:"repeated_passages"`
	MinNgram         int  `json:"min_ngram"`
	MaxNgram         int  `json:"max_ngram"`
	MaxRepeats       int  `json:"max_repeats"`
}

type similarityRequest struct {
	Text1     *string  `json:"text1"`
	Text2     *string  `json:"text2"`
	Threshold *float64 `json:"threshold"`
	Method    string   `json:"method"`
	Shingle   int      `json:"shingle"`
}

type qualityRequest struct {
	Content *string `json:"content"`
}

type batchRequest struct {
	Jobs *[]batchJob `json:"jobs"`
}

type batchJob struct {
	Operation string          `json:"operation"`
	Input     json.RawMessage `json:"input"`
}

type dedupRequest struct {
	Documents    *[]analysis.Document `json:"documents"`
	Shingle      int                  `json:"shingle"`
	Permutations int                  `json:"permutations"`
	Bands        int                  `json:"bands"`
	Threshold    float64              `json:"threshold"`
	Seed         uint64               `json:"seed"`
}

// Response data: the analysis result plus the two fields the HTTP layer adds.
type timing struct {
	AnalysisTime float64 `json:"analysis_time"`
	Timestamp    string  `json:"timestamp"`
}

type analyzeData struct {
	analysis.Analysis
	timing
}

type similarityData struct {
	analysis.Similarity
	timing
}

type qualityData struct {
	analysis.Quality
	timing
}

type dedupData struct {
	analysis.DedupResult
	timing
}

// BatchResult is one job's outcome inside a batch.
type BatchResult struct {
	Index     int      `json:"index"`
	Operation string   `json:"operation"`
	Status    string   `json:"status"` // "completed" or "failed"
	Result    any      `json:"result"`
	Error     *Problem `json:"error"`
}

type batchData struct {
	BatchID       string        `json:"batch_id"`
	Status        string        `json:"status"`
	TotalJobs     int           `json:"total_jobs"`
	CompletedJobs int           `json:"completed_jobs"`
	FailedJobs    int           `json:"failed_jobs"`
	Progress      float64       `json:"progress"`
	Results       []BatchResult `json:"results"`
	timing
}

// Batch statuses.
const (
	BatchCompleted           = "completed"
	BatchCompletedWithErrors = "completed_with_errors"
	BatchFailed              = "failed"
)

func (s *Server) stamp(start time.Time) timing {
	return timing{AnalysisTime: s.now().Sub(start).Seconds(), Timestamp: s.now().UTC().Format("2006-01-02T15:04:05.000000Z07:00")}
}

// requireText validates one text field: present, not blank, valid UTF-8
// (reachable through batch inputs decoded from raw JSON escapes), bounded.
func requireText(field string, v *string, limit int) (string, error) {
	if v == nil {
		return "", invalidField(field, field+": field required")
	}
	if strings.TrimSpace(*v) == "" {
		return "", invalidField(field, field+": must not be empty or only whitespace")
	}
	if !utf8.ValidString(*v) {
		return "", invalidField(field, field+": is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(*v); n > limit {
		return "", invalidField(field, fmt.Sprintf("%s: %d characters exceed the limit of %d", field, n, limit))
	}
	return *v, nil
}

func threshold(field string, v *float64) (float64, error) {
	if v == nil {
		return DefaultThreshold, nil
	}
	if !(*v >= 0 && *v <= 1) {
		return 0, invalidField(field, fmt.Sprintf("%s: %v is outside [0, 1]", field, *v))
	}
	return *v, nil
}

// cached runs compute unless the cache holds the result for (kind, key
// input); results are JSON in the cache so any store can hold them.
func cached[T any](ctx context.Context, s *Server, kind string, keyInput any, compute func() (T, error)) (T, error) {
	var zero T
	key, err := cache.Key(kind, keyInput)
	if err != nil {
		return zero, err
	}
	span := trace.SpanFromContext(ctx)
	if raw, ok, err := s.cache.Get(ctx, key); err != nil {
		s.log.WarnContext(ctx, "cache get failed; computing", "err", err)
	} else if ok {
		var v T
		if err := json.Unmarshal(raw, &v); err == nil {
			s.cacheHits.Inc()
			span.SetAttributes(attribute.Bool("analysis.cache_hit", true))
			return v, nil
		}
	}
	s.cacheMisses.Inc()
	span.SetAttributes(attribute.Bool("analysis.cache_hit", false))
	v, err := compute()
	if err != nil {
		return zero, err
	}
	if raw, err := json.Marshal(v); err == nil {
		if err := s.cache.Set(ctx, key, raw); err != nil {
			s.log.WarnContext(ctx, "cache set failed", "err", err)
		}
	}
	return v, nil
}

// span runs f inside a child span named "analysis.<kind>" and counts it.
func (s *Server) span(ctx context.Context, kind string, f func(ctx context.Context) (words int, err error)) error {
	s.analysisRequests.WithLabelValues(kind).Inc()
	ctx, span := s.tracer.Start(ctx, "analysis."+kind)
	defer span.End()
	words, err := f(ctx)
	span.SetAttributes(attribute.String("analysis.kind", kind), attribute.Int("analysis.word_count", words))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

func (s *Server) analyze(ctx context.Context, raw []byte) (any, error) {
	var req analyzeRequest
	if err := decodeJSON(raw, &req); err != nil {
		return nil, err
	}
	content, err := requireText("content", req.Content, MaxTextChars)
	if err != nil {
		return nil, err
	}
	th, err := threshold("threshold", req.Threshold)
	if err != nil {
		return nil, err
	}
	opt := analysis.AnalyzeOptions{Repeats: req.RepeatedPassages, MinNgram: req.MinNgram, MaxNgram: req.MaxNgram, MaxRepeats: req.MaxRepeats}
	if err := opt.Validate(); err != nil {
		return nil, invalidField("", strings.TrimPrefix(err.Error(), "analysis: "))
	}
	start := s.now()
	var res analysis.Analysis
	err = s.span(ctx, KindAnalyze, func(ctx context.Context) (int, error) {
		var err error
		res, err = cached(ctx, s, KindAnalyze, struct {
			C string
			T float64
			O analysis.AnalyzeOptions
		}{content, th, opt}, func() (analysis.Analysis, error) { return analysis.Analyze(content, opt), nil })
		return res.WordCount, err
	})
	return analyzeData{res, s.stamp(start)}, err
}

func (s *Server) similarity(ctx context.Context, raw []byte) (any, error) {
	var req similarityRequest
	if err := decodeJSON(raw, &req); err != nil {
		return nil, err
	}
	t1, err := requireText("text1", req.Text1, MaxTextChars)
	if err != nil {
		return nil, err
	}
	t2, err := requireText("text2", req.Text2, MaxTextChars)
	if err != nil {
		return nil, err
	}
	th, err := threshold("threshold", req.Threshold)
	if err != nil {
		return nil, err
	}
	switch req.Method {
	case "", analysis.MethodSequence, analysis.MethodJaccard, analysis.MethodCosine:
	default:
		return nil, invalidField("method", fmt.Sprintf("method: %q is not one of sequence, jaccard, cosine", req.Method))
	}
	if req.Shingle < 0 || req.Shingle > analysis.MaxShingle {
		return nil, invalidField("shingle", fmt.Sprintf("shingle: %d is outside [0, %d]", req.Shingle, analysis.MaxShingle))
	}
	opt := analysis.SimilarityOptions{Method: req.Method, Shingle: req.Shingle}
	start := s.now()
	var res analysis.Similarity
	err = s.span(ctx, KindSimilarity, func(ctx context.Context) (int, error) {
		var err error
		res, err = cached(ctx, s, KindSimilarity, struct {
			A, B string
			T    float64
			O    analysis.SimilarityOptions
		}{t1, t2, th, opt}, func() (analysis.Similarity, error) { return analysis.Similar(t1, t2, th, opt) })
		return len(res.CommonWords), err
	})
	if err != nil {
		// Every error Similar returns is about its input (a text over
		// analysis.MaxSequenceChars, an option out of range).
		return nil, invalidField("", strings.TrimPrefix(err.Error(), "analysis: "))
	}
	return similarityData{res, s.stamp(start)}, nil
}

func (s *Server) quality(ctx context.Context, raw []byte) (any, error) {
	var req qualityRequest
	if err := decodeJSON(raw, &req); err != nil {
		return nil, err
	}
	content, err := requireText("content", req.Content, MaxTextChars)
	if err != nil {
		return nil, err
	}
	start := s.now()
	var res analysis.Quality
	err = s.span(ctx, KindQuality, func(ctx context.Context) (int, error) {
		var err error
		res, err = cached(ctx, s, KindQuality, content, func() (analysis.Quality, error) { return analysis.AssessQuality(content), nil })
		return res.Words, err
	})
	return qualityData{res, s.stamp(start)}, err
}

// batch runs each job synchronously and reports per-job results; a failing
// job does not fail the batch. progress is called after each job (0..1).
func (s *Server) batch(ctx context.Context, raw []byte, progress func(float64)) (any, error) {
	var req batchRequest
	if err := decodeJSON(raw, &req); err != nil {
		return nil, err
	}
	if req.Jobs == nil {
		return nil, invalidField("jobs", "jobs: field required")
	}
	jobs := *req.Jobs
	if len(jobs) == 0 {
		return nil, invalidField("jobs", "jobs: must contain at least one job")
	}
	if len(jobs) > MaxBatchJobs {
		return nil, invalidField("jobs", fmt.Sprintf("jobs: %d jobs exceed the limit of %d per batch (use POST /api/v1/jobs for more)", len(jobs), MaxBatchJobs))
	}
	start := s.now()
	out := batchData{BatchID: newID(), TotalJobs: len(jobs), Results: make([]BatchResult, len(jobs))}
	err := s.span(ctx, KindBatch, func(ctx context.Context) (int, error) {
		for i, job := range jobs {
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("batch cancelled after %d of %d jobs: %w", i, len(jobs), err)
			}
			r := BatchResult{Index: i, Operation: job.Operation, Status: "completed"}
			var res any
			var err error
			run := s.operation(job.Operation)
			switch {
			case run == nil:
				err = invalidField("operation", fmt.Sprintf("operation: %q is not one of analyze, similarity, quality", job.Operation))
			case isAbsent(job.Input):
				err = invalidField("input", "input: field required")
			case !isObject(job.Input):
				err = invalidField("input", "input: must be a JSON object (the body of that operation)")
			default:
				res, err = run(ctx, job.Input)
			}
			if err != nil {
				r.Status, r.Error = "failed", problemOf(err)
				r.Error.Field = prefixField(fmt.Sprintf("jobs[%d].", i), r.Error.Field)
				out.FailedJobs++
			} else {
				r.Result = res
				out.CompletedJobs++
			}
			out.Results[i] = r
			if progress != nil {
				progress(float64(i+1) / float64(len(jobs)))
			}
		}
		return 0, nil
	})
	if err != nil {
		return nil, err
	}
	out.Progress = 100 * float64(out.CompletedJobs+out.FailedJobs) / float64(out.TotalJobs)
	switch {
	case out.FailedJobs == 0:
		out.Status = BatchCompleted
	case out.CompletedJobs == 0:
		out.Status = BatchFailed
	default:
		out.Status = BatchCompletedWithErrors
	}
	out.timing = s.stamp(start)
	return out, nil
}

// operation returns the synchronous operation a batch job or an "analyze"
// job names, or nil.
func (s *Server) operation(name string) func(context.Context, []byte) (any, error) {
	switch name {
	case KindAnalyze:
		return s.analyze
	case KindSimilarity:
		return s.similarity
	case KindQuality:
		return s.quality
	}
	return nil
}

func isObject(raw json.RawMessage) bool {
	t := strings.TrimSpace(string(raw))
	return t != "" && t[0] == '{'
}

func isAbsent(raw json.RawMessage) bool {
	t := strings.TrimSpace(string(raw))
	return t == "" || t == "null"
}

func prefixField(prefix, field string) string {
	if field == "" {
		return strings.TrimSuffix(prefix, ".")
	}
	return prefix + field
}

func (s *Server) dedup(ctx context.Context, raw []byte, progress func(float64)) (any, error) {
	var req dedupRequest
	if err := decodeJSON(raw, &req); err != nil {
		return nil, err
	}
	if req.Documents == nil {
		return nil, invalidField("documents", "documents: field required")
	}
	docs := *req.Documents
	if len(docs) > MaxDedupDocuments {
		return nil, invalidField("documents", fmt.Sprintf("documents: %d documents exceed the limit of %d", len(docs), MaxDedupDocuments))
	}
	seen := make(map[string]int, len(docs))
	for i := range docs {
		field := fmt.Sprintf("documents[%d]", i)
		if docs[i].ID == "" {
			docs[i].ID = fmt.Sprint(i)
		}
		if len(docs[i].ID) > MaxDocumentIDLength {
			return nil, invalidField(field+".id", fmt.Sprintf("%s.id: longer than %d bytes", field, MaxDocumentIDLength))
		}
		if j, dup := seen[docs[i].ID]; dup {
			return nil, invalidField(field+".id", fmt.Sprintf("%s.id: %q repeats documents[%d].id", field, docs[i].ID, j))
		}
		seen[docs[i].ID] = i
		if n := utf8.RuneCountInString(docs[i].Text); n > MaxTextChars {
			return nil, invalidField(field+".text", fmt.Sprintf("%s.text: %d characters exceed the limit of %d", field, n, MaxTextChars))
		}
	}
	opt := analysis.DedupOptions{Shingle: req.Shingle, Permutations: req.Permutations, Bands: req.Bands, Threshold: req.Threshold, Seed: req.Seed}
	if err := opt.Validate(); err != nil {
		return nil, invalidField("", strings.TrimPrefix(err.Error(), "analysis: "))
	}
	start := s.now()
	var res analysis.DedupResult
	err := s.span(ctx, KindDedup, func(ctx context.Context) (int, error) {
		var err error
		res, err = analysis.DedupProgress(ctx, docs, opt, func(done, total int) {
			if progress != nil && total > 0 {
				progress(float64(done) / float64(total))
			}
		})
		return len(docs), err
	})
	if errors.Is(err, analysis.ErrInputTooLarge) {
		return nil, invalidField("documents", strings.TrimPrefix(err.Error(), "analysis: "))
	}
	if err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	return dedupData{res, s.stamp(start)}, nil
}

// problemOf turns an operation error into the problem to report: decode and
// validation errors keep theirs; anything else is internal.
func problemOf(err error) *Problem {
	var de *decodeError
	if errors.As(err, &de) {
		p := *de.problem
		if p.Type == "" {
			p.Type = ProblemType(p.Status)
		}
		if p.Title == "" {
			p.Title = http.StatusText(p.Status)
		}
		p.Error = p.Detail
		return &p
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Problem{Type: ProblemType(503), Title: "Service Unavailable", Status: 503, Detail: "the request was cancelled or timed out", Error: "the request was cancelled or timed out"}
	}
	return &Problem{Type: ProblemType(500), Title: "Internal Server Error", Status: 500, Detail: "internal error", Error: "internal error"}
}
