package analysis

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runPython runs script with interpreter, feeding in as JSON on stdin and
// decoding the JSON it prints into out. One process per call: the whole batch
// of cases goes through at once.
func runPython(t testing.TB, interpreter, script string, in, out any) {
	t.Helper()
	path, err := exec.LookPath(interpreter)
	if err != nil {
		t.Fatalf("%s is required for the reference tests: %v", interpreter, err)
	}
	payload, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "-c", script)
	cmd.Stdin = bytes.NewReader(payload)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", interpreter, err, stderr.String())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("decoding %s output: %v", interpreter, err)
	}
}

// alphabets used to generate test texts: ASCII, Greek with capital sigma
// (final-sigma lower-casing), Turkish dotted I (full lower-case mapping),
// combining marks (not \w), CJK, non-BMP letters, emoji, digits and numbers
// of other scripts (Nd, No, Nl), underscore, punctuation and odd spaces.
var alphabets = [][]rune{
	[]rune("abcdefghijklmnopqrstuvwxyz      ABCDEFG.,;!?'-"),
	[]rune("ΑΒΓΔΣσςαβγδ ΣΑ ΟΔΟΣ.  '"),
	[]rune("İıIiŞşĞğ çÇ stanbul "),
	[]rune("e\u0301a\u0307o\u0308 \u0300\u20dd_ \u200d\u00ad"),
	[]rune("中文字符测试 日本語のテキスト 한국어 "),
	[]rune("𝐀𝐁𝐂𝑎𝑏 😀😁🎉 𐐀𐐨 \U0001F1E6"),
	[]rune("0123456789٣٤۵६੭²³½ⅫⅣ〇 _"),
	[]rune("\t\n\r\v\f\x1c\x1d\x1e\x1f\u0085\u00a0\u1680\u2003\u2028\u3000 x"),
}

// genText builds a random text of n code points from a random mix of
// alphabets; rep > 0 makes it repetitive (few distinct characters).
func genText(rng *rand.Rand, n int, rep bool) string {
	var pool []rune
	k := 1 + rng.IntN(3)
	for range k {
		pool = append(pool, alphabets[rng.IntN(len(alphabets))]...)
	}
	if rep {
		pool = pool[:1+rng.IntN(min(4, len(pool)))]
		pool = append(pool, ' ')
	}
	var b strings.Builder
	for range n {
		b.WriteRune(pool[rng.IntN(len(pool))])
	}
	return b.String()
}

// mutate applies random character edits to s.
func mutate(rng *rand.Rand, s string, edits int) string {
	r := []rune(s)
	for range edits {
		switch op := rng.IntN(3); {
		case op == 0 && len(r) > 0:
			i := rng.IntN(len(r))
			r = append(r[:i], r[i+1:]...)
		case op == 1:
			i := rng.IntN(len(r) + 1)
			c := alphabets[rng.IntN(len(alphabets))]
			r = append(r[:i], append([]rune{c[rng.IntN(len(c))]}, r[i:]...)...)
		case len(r) > 0:
			c := alphabets[rng.IntN(len(alphabets))]
			r[rng.IntN(len(r))] = c[rng.IntN(len(c))]
		}
	}
	return string(r)
}

// prose returns real English paragraphs from the Debian license texts every
// Debian system ships (base-files), so the tests run on real prose.
func prose(t testing.TB) []string {
	t.Helper()
	var paras []string
	for _, name := range []string{"GPL-3", "GPL-2", "LGPL-2.1", "Apache-2.0", "MPL-2.0", "Artistic"} {
		data, err := os.ReadFile(filepath.Join("/usr/share/common-licenses", name))
		if err != nil {
			t.Fatalf("real prose is read from base-files' license texts: %v", err)
		}
		for _, p := range strings.Split(string(data), "\n\n") {
			if len(p) > 80 {
				paras = append(paras, p)
			}
		}
	}
	if len(paras) < 100 {
		t.Fatalf("only %d paragraphs of prose found", len(paras))
	}
	return paras
}

// genPairs builds the comparison cases: random pairs across lengths that do
// and do not trigger difflib's autojunk (len(b) >= 200), near-copies, empty
// strings, repetitive texts, and real prose pairs.
func genPairs(t testing.TB) [][2]string {
	rng := rand.New(rand.NewPCG(1, 2))
	pairs := [][2]string{{"", ""}, {"", "a"}, {"abc", ""}, {"ΟΔΟΣ", "οδος"}, {"İstanbul", "istanbul"}}
	lengths := []int{1, 5, 30, 120, 199, 200, 201, 260, 450, 900}
	for i := 0; i < 360; i++ {
		n := lengths[rng.IntN(len(lengths))]
		rep := i%5 == 0
		a := genText(rng, n, rep)
		var b string
		switch i % 3 {
		case 0:
			b = genText(rng, lengths[rng.IntN(len(lengths))], rep)
		default:
			b = mutate(rng, a, 1+rng.IntN(1+n/10))
		}
		pairs = append(pairs, [2]string{a, b})
	}
	paras := prose(t)
	for i := 0; i < 40; i++ {
		a := paras[rng.IntN(len(paras))]
		b := paras[rng.IntN(len(paras))]
		if i%2 == 0 {
			b = mutate(rng, a, 1+rng.IntN(20))
		}
		pairs = append(pairs, [2]string{a, b})
	}
	return pairs
}

const pyDifflib = `
import sys, json, difflib
pairs = json.load(sys.stdin)
print(json.dumps([difflib.SequenceMatcher(None, a, b).ratio() for a, b in pairs]))
`

func TestSequenceRatioMatchesPythonDifflib(t *testing.T) {
	pairs := genPairs(t)
	// Both orders: the ratio is not symmetric once autojunk applies.
	var cases [][2]string
	for _, p := range pairs {
		cases = append(cases, p, [2]string{p[1], p[0]})
	}
	var want []float64
	runPython(t, "python3", pyDifflib, cases, &want)
	if len(want) != len(cases) {
		t.Fatalf("python returned %d ratios for %d pairs", len(want), len(cases))
	}
	autojunk := 0
	for i, c := range cases {
		if len([]rune(c[1])) >= 200 {
			autojunk++
		}
		if got := SequenceRatio(c[0], c[1]); got != want[i] {
			t.Errorf("case %d: SequenceRatio(%q, %q) = %v, difflib says %v", i, trunc(c[0]), trunc(c[1]), got, want[i])
		}
	}
	if autojunk < 100 {
		t.Fatalf("only %d cases exercise autojunk", autojunk)
	}
}

const pyTextFacts = `
import sys, json, re, hashlib
out = []
for s in json.load(sys.stdin):
    words = re.findall(r'\w+', s.lower())
    u = len(set(words))
    out.append({
        "lower": s.lower(),
        "tokens": words,
        "unique": u,
        "redundancy": 1.0 - u / len(words) if words else 0.0,
        "hash": hashlib.md5(s.strip().encode("utf-8")).hexdigest(),
        "chars": len(s),
        "strip": s.strip(),
    })
print(json.dumps(out))
`

type pyFacts struct {
	Lower      string   `json:"lower"`
	Tokens     []string `json:"tokens"`
	Unique     int      `json:"unique"`
	Redundancy float64  `json:"redundancy"`
	Hash       string   `json:"hash"`
	Chars      int      `json:"chars"`
	Strip      string   `json:"strip"`
}

func TestTokensAndAnalyzeMatchPython(t *testing.T) {
	var texts []string
	for _, p := range genPairs(t) {
		texts = append(texts, p[0], p[1])
	}
	texts = append(texts, "ΣΑΣ ΑΣ. Σ 'Σ' ΑΣ'Β aΣ\u0301 Σ\u0301a", "ÀÉÎ İİ ǅ ǈ ẞ Ω K Å", "__init__ x_1 ٣٤ ²³ Ⅻ")
	var want []pyFacts
	runPython(t, "python3", pyTextFacts, texts, &want)
	for i, s := range texts {
		w := want[i]
		if got := pyLower(s); got != w.Lower {
			t.Errorf("text %d: pyLower(%q) = %q, Python %q", i, trunc(s), trunc(got), trunc(w.Lower))
		}
		if got := pyStrip(s); got != w.Strip {
			t.Errorf("text %d: pyStrip(%q) = %q, Python %q", i, trunc(s), trunc(got), trunc(w.Strip))
		}
		got := Tokens(s)
		if len(got) == 0 && len(w.Tokens) == 0 {
			got = w.Tokens
		}
		if strings.Join(got, "\x00") != strings.Join(w.Tokens, "\x00") || len(got) != len(w.Tokens) {
			t.Errorf("text %d: Tokens(%q) = %q, Python %q", i, trunc(s), got, w.Tokens)
		}
		a := Analyze(s, AnalyzeOptions{})
		if a.WordCount != len(w.Tokens) || a.UniqueWords != w.Unique || a.RedundancyScore != w.Redundancy ||
			a.ContentHash != w.Hash || a.CharacterCount != w.Chars {
			t.Errorf("text %d: Analyze(%q) = %+v, Python %+v", i, trunc(s), a, w)
		}
	}
}

// TestCodePointsMatchPython compares, for every code point Python 3.11's
// Unicode 14.0 database assigns, the lower-case mapping, \w membership and
// isspace() with ours. Code points assigned only in Unicode 15.0 (Go's
// tables) are left out: there Python 3.11 itself disagrees with 3.12.
func TestCodePointsMatchPython(t *testing.T) {
	const script = `
import sys, json, re, unicodedata
w = re.compile(r'\w')
flags = bytearray(0x110000)
lower = {}
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF:
        continue
    c = chr(cp)
    if unicodedata.category(c) == 'Cn':
        continue
    f = 1
    if w.match(c): f |= 2
    if c.isspace(): f |= 4
    flags[cp] = f
    l = c.lower()
    if l != c:
        lower[cp] = l
print(json.dumps({"flags": flags.hex(), "lower": lower}))
`
	var py struct {
		Flags string            `json:"flags"`
		Lower map[string]string `json:"lower"`
	}
	runPython(t, "python3", script, nil, &py)
	lowerOf := make(map[rune]string, len(py.Lower))
	for k, v := range py.Lower {
		var cp rune
		for _, c := range k {
			cp = cp*10 + c - '0'
		}
		lowerOf[cp] = v
	}
	mismatches := 0
	checked := 0
	for cp := rune(0); cp < 0x110000; cp++ {
		f := hexByte(py.Flags, int(cp))
		if f&1 == 0 {
			continue
		}
		checked++
		s := string(cp)
		wantLower, ok := lowerOf[cp]
		if !ok {
			wantLower = s
		}
		bad := pyLower(s) != wantLower || isWordRune(cp) != (f&2 != 0) || pyIsSpace(cp) != (f&4 != 0)
		if bad {
			mismatches++
			if mismatches <= 20 {
				t.Errorf("U+%04X: lower %q (Python %q), word %v (Python %v), space %v (Python %v)",
					cp, pyLower(s), wantLower, isWordRune(cp), f&2 != 0, pyIsSpace(cp), f&4 != 0)
			}
		}
	}
	if checked < 140000 {
		t.Fatalf("only %d assigned code points checked", checked)
	}
	if mismatches > 0 {
		t.Errorf("%d of %d code points differ from Python", mismatches, checked)
	}
}

func hexByte(h string, i int) byte {
	v := func(c byte) byte {
		if c <= '9' {
			return c - '0'
		}
		return c - 'a' + 10
	}
	return v(h[2*i])<<4 | v(h[2*i+1])
}

func trunc(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}
