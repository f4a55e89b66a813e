package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fuzzHandler checks the contract for any body: never a 5xx or a panic,
// always one JSON document, a problem+json for every 4xx.
func fuzzHandler(f *testing.F, path string, seeds ...string) {
	s, err := New(Config{MaxBodyBytes: 64 << 10})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	for _, seed := range seeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", path, strings.NewReader(string(body)))
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.Bytes())
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("not JSON for %q: %v: %q", body, err, rec.Body.Bytes())
		}
		if rec.Code >= 400 && (rec.Header().Get("Content-Type") != "application/problem+json" || v["success"] != false) {
			t.Fatalf("error without problem for %q: %s", body, rec.Body.Bytes())
		}
		if rec.Code == http.StatusOK && v["success"] != true {
			t.Fatalf("200 without success envelope: %s", rec.Body.Bytes())
		}
	})
}

func FuzzAnalyzeHandler(f *testing.F) {
	fuzzHandler(f, "/api/v1/analyze",
		`{"content":"The cat sat. The cat sat."}`,
		`{"content":"a b c a b c a b c","repeated_passages":true,"min_ngram":1,"max_ngram":3}`,
		`{"content":"x","threshold":2}`, `{"content":"\ud800"}`, `{"content":"İstanbul ΣΑΣ"}`, `[]`, `null`, `{"content":`)
}

func FuzzSimilarityHandler(f *testing.F) {
	fuzzHandler(f, "/similarity",
		`{"text1":"abc","text2":"abd"}`, `{"text1":"red fish","text2":"fish red","method":"cosine"}`,
		`{"text1":"a b c d","text2":"b c d e","method":"jaccard","shingle":2}`, `{"text1":"a","text2":"b","threshold":"x"}`)
}

func FuzzQualityHandler(f *testing.F) {
	fuzzHandler(f, "/quality", `{"content":"Short words. Very readable!"}`, `{"content":"...!!!???"}`, `{"content":1e999}`)
}

func FuzzBatchHandler(f *testing.F) {
	fuzzHandler(f, "/batch/process",
		`{"jobs":[{"operation":"analyze","input":{"content":"a"}},{"operation":"similarity","input":{"text1":"a","text2":"b"}}]}`,
		`{"jobs":[{"operation":"quality","input":"not an object"}]}`, `{"jobs":[{}]}`, `{"jobs":null}`)
}

func FuzzDedupHandler(f *testing.F) {
	fuzzHandler(f, "/api/v1/dedup",
		`{"documents":[{"id":"a","text":"one two three four"},{"id":"b","text":"one two three four"}]}`,
		`{"documents":[{"text":"x"}],"shingle":1,"permutations":16,"bands":4,"threshold":0.5,"seed":7}`,
		`{"documents":[{"id":1}]}`, `{"documents":[],"bands":-1}`)
}
