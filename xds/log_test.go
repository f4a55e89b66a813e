package xds

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// stringer counts how often it is formatted.
type stringer struct{ n *int }

func (s stringer) String() string { *s.n++; return "names" }

// TestCPLLoggerFormatsOnlyWhatIsLogged: go-control-plane's debug and info
// lines (one per push and per ACK) reach slog at debug, and are not even
// formatted when debug is off; warnings and errors always are.
func TestCPLLoggerFormatsOnlyWhatIsLogged(t *testing.T) {
	var out bytes.Buffer
	formatted := 0
	arg := stringer{&formatted}
	quiet := cplLogger{slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	quiet.Debugf("respond %v", arg)
	quiet.Infof("open watch %v", arg)
	if formatted != 0 || out.Len() != 0 {
		t.Fatalf("debug off: formatted %d times, logged %q", formatted, out.String())
	}
	quiet.Warnf("warn %v", arg)
	quiet.Errorf("error %v", arg)
	if formatted != 2 || !strings.Contains(out.String(), `level=WARN msg="xds: warn names"`) || !strings.Contains(out.String(), `level=ERROR msg="xds: error names"`) {
		t.Fatalf("warnings and errors: formatted %d times, logged %q", formatted, out.String())
	}
	out.Reset()
	verbose := cplLogger{slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	verbose.Infof("open watch %v", arg)
	if !strings.Contains(out.String(), `level=DEBUG msg="xds: open watch names"`) {
		t.Fatalf("debug on: logged %q", out.String())
	}
}
