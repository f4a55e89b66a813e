package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"
)

// decodeError is a request body that cannot become the request struct: it
// carries the problem to answer with.
type decodeError struct{ problem *Problem }

func (e *decodeError) Error() string { return e.problem.Detail }

func badBody(status int, detail string) *decodeError {
	return &decodeError{problem: &Problem{Status: status, Detail: detail}}
}

func invalidField(field, detail string) *decodeError {
	return &decodeError{problem: &Problem{Status: http.StatusUnprocessableEntity, Field: field, Detail: detail}}
}

// readBody reads at most limit bytes of r's body; a longer body is a 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, badBody(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", limit))
		}
		return nil, badBody(http.StatusBadRequest, "reading request body: "+err.Error())
	}
	return body, nil
}

// decodeJSON unmarshals body into dst (a pointer to a request struct) and
// turns every failure into a precise client error:
//
//   - empty body, bad syntax, trailing data → 400 with offset, line and column
//   - invalid UTF-8 anywhere in the body → 422 with the byte offset
//     (encoding/json would silently turn it into U+FFFD)
//   - a value of the wrong type → 422 naming the field
//   - a body that is not an object → 422
//
// Unknown fields are ignored, as the original (pydantic) service did.
func decodeJSON(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badBody(http.StatusBadRequest, "request body is empty; send a JSON object")
	}
	if !utf8.Valid(body) {
		off := int64(firstInvalidUTF8(body))
		p := &Problem{Status: http.StatusUnprocessableEntity, Detail: fmt.Sprintf("request body is not valid UTF-8 (byte offset %d)", off), Offset: &off}
		return &decodeError{problem: p}
	}
	err := json.Unmarshal(body, dst)
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		// Offset counts the bytes read *including* the offending one.
		off := syn.Offset - 1
		if off < 0 {
			off = 0
		}
		line, col := lineColumn(body, off)
		return &decodeError{problem: &Problem{
			Status: http.StatusBadRequest, Title: "Invalid JSON",
			Detail: fmt.Sprintf("invalid JSON at line %d, column %d (byte offset %d): %s", line, col, off, syn.Error()),
			Offset: &off, Line: line, Column: col,
		}}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badBody(http.StatusUnprocessableEntity, fmt.Sprintf("request body must be a JSON object, not %s", typ.Value))
		}
		return invalidField(typ.Field, fmt.Sprintf("%s: expected %s, got %s", typ.Field, jsonTypeName(typ.Type.Kind().String()), typ.Value))
	case errors.Is(err, io.ErrUnexpectedEOF):
		off := int64(len(body))
		line, col := lineColumn(body, off)
		return &decodeError{problem: &Problem{Status: http.StatusBadRequest, Title: "Invalid JSON",
			Detail: fmt.Sprintf("invalid JSON: unexpected end of input at line %d, column %d", line, col), Offset: &off, Line: line, Column: col}}
	}
	return badBody(http.StatusBadRequest, "invalid JSON: "+err.Error())
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "float64", "float32", "int", "int64", "uint64", "uint32", "int32":
		return "a number"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return kind
}

// lineColumn converts a byte offset into 1-based line and column (columns
// count code points).
func lineColumn(body []byte, off int64) (line, col int) {
	if off > int64(len(body)) {
		off = int64(len(body))
	}
	line, col = 1, 1
	for _, r := range string(body[:off]) {
		if r == '\n' {
			line, col = line+1, 1
			continue
		}
		col++
	}
	return line, col
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}
