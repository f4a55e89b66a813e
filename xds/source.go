package xds

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
)

// DefaultPolicyName is the policy a directory serves to a node that no file
// names: DIR/default.yaml (or .yml, .json).
const DefaultPolicyName = "default"

// maxPolicyFiles bounds a policy directory.
const maxPolicyFiles = 1000

// Source is where the control plane reads policies: one file, served to
// every node, or a directory in which each file serves the nodes it names.
//
// In a directory, a node gets the policy of the first file that exists of
//
//	DIR/<node id>.yaml   (or .yml, .json)
//	DIR/<node cluster>.yaml
//	DIR/default.yaml
//
// and nothing if none does (it is logged). File names are compared exactly;
// files of other extensions and subdirectories are ignored.
//
// Load reads the files again; a file that fails to decode keeps the last
// good policy it had, and its error is kept for Errors until it is fixed.
type Source struct {
	path string
	dir  bool

	mu     sync.Mutex
	good   map[string]*Entry // by name (file stem; "" for a single file)
	errs   map[string]error  // by file path: the last document refused
	hashes map[string]string // by file path: hash of the last document read
}

// Entry is one good policy of a Source.
type Entry struct {
	Name     string // file stem in a directory, "" for a single file
	File     string
	Policy   *policy.Policy
	Document []byte
	LoadedAt time.Time
}

// NewSource returns a source for the file or directory at path and loads
// it. It fails when path does not exist, or when a single file is invalid
// (a directory starts with whatever of its files are good).
func NewSource(path string) (*Source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("xds: policy source: %w", err)
	}
	s := &Source{path: path, dir: fi.IsDir(), good: map[string]*Entry{}, errs: map[string]error{}, hashes: map[string]string{}}
	if _, err := s.Load(); err != nil {
		return nil, err
	}
	if !s.dir {
		if err := s.errs[path]; err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Path is the file or directory of the source.
func (s *Source) Path() string { return s.path }

// Load reads the source again and reports whether any document changed:
// a good policy replaced, added or removed, or a new document refused.
// The error is for the directory itself (unreadable); problems of single
// files are kept for Errors.
func (s *Source) Load() (bool, error) {
	files := []string{s.path}
	if s.dir {
		var err error
		if files, err = policyFiles(s.path); err != nil {
			return false, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	seen := map[string]bool{}
	for _, f := range files {
		name := ""
		if s.dir {
			name = stem(f)
		}
		seen[name] = true
		data, err := policyfile.Read(f)
		if err != nil {
			s.errs[f] = err
			continue
		}
		sum := documentHash(data)
		if s.hashes[f] == sum {
			continue // unchanged: its result (good or refused) stands
		}
		s.hashes[f] = sum
		p, err := policyfile.ParseFile(f, data)
		if err != nil {
			s.errs[f] = err
			changed = true // a new refusal, to be reported
			continue
		}
		delete(s.errs, f)
		s.good[name] = &Entry{Name: name, File: f, Policy: p, Document: data, LoadedAt: time.Now()}
		changed = true
	}
	for name, e := range s.good {
		if !seen[name] {
			delete(s.good, name)
			delete(s.hashes, e.File)
			changed = true
		}
	}
	for f := range s.errs {
		if s.dir && !seen[stem(f)] {
			delete(s.errs, f)
			delete(s.hashes, f)
		}
	}
	return changed, nil
}

// For returns the policy for a node, by id and cluster; nil when none
// applies.
func (s *Source) For(id, clusterName string) *Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dir {
		return s.good[""]
	}
	for _, name := range []string{id, clusterName, DefaultPolicyName} {
		if name == "" {
			continue
		}
		if e := s.good[name]; e != nil {
			return e
		}
	}
	return nil
}

// Entries returns the good policies, by name.
func (s *Source) Entries() []*Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Entry, 0, len(s.good))
	for _, k := range sortedKeys(s.good) {
		out = append(out, s.good[k])
	}
	return out
}

// Errors returns the files whose last document was refused, with why.
func (s *Source) Errors() map[string]error {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]error, len(s.errs))
	for k, v := range s.errs {
		out[k] = v
	}
	return out
}

// Watch calls Load every interval until ctx ends, and changed() after every
// Load that found a changed document (or failed to read the directory).
func (s *Source) Watch(ctx context.Context, interval time.Duration, changed func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ok, err := s.Load(); err != nil || ok {
			changed()
		}
	}
}

func policyFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("xds: policy directory: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		switch filepath.Ext(e.Name()) {
		case ".yaml", ".yml", ".json":
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	if len(out) > maxPolicyFiles {
		return nil, fmt.Errorf("xds: policy directory %s has %d policy files, more than %d", dir, len(out), maxPolicyFiles)
	}
	return out, nil
}

func stem(file string) string {
	b := filepath.Base(file)
	return strings.TrimSuffix(b, filepath.Ext(b))
}
