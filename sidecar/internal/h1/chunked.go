package h1

import "strings"

// MaxChunkSizeDigits bounds a chunk-size: 15 hex digits cannot overflow an
// int64 (and no upstream sends an exabyte chunk).
const MaxChunkSizeDigits = 15

// ChunkSize parses a chunk-size line of a chunked body as read from the
// wire, "1a3f[;ext]\r\n", and returns the size. Chunk extensions are
// allowed (RFC 9112 §7.1.1) as long as they are visible ASCII, spaces and
// tabs; a proxy passes them on.
func ChunkSize(line []byte) (int64, bool) {
	n := len(line)
	if n < 3 || line[n-2] != '\r' || line[n-1] != '\n' {
		return 0, false
	}
	line = line[:n-2]
	var size int64
	i := 0
	for ; i < len(line) && i <= MaxChunkSizeDigits; i++ {
		c := line[i]
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			goto ext
		}
		size = size<<4 | int64(v)
	}
ext:
	if i == 0 || i > MaxChunkSizeDigits {
		return 0, false
	}
	rest := line[i:]
	if len(rest) > 0 {
		// BWS ";" ext: whitespace may precede the semicolon.
		j := 0
		for j < len(rest) && (rest[j] == ' ' || rest[j] == '\t') {
			j++
		}
		if j == len(rest) || rest[j] != ';' {
			return 0, false
		}
		for _, c := range rest {
			if class[c]&classValue == 0 {
				return 0, false
			}
		}
	}
	return size, true
}

// TrailerLine reports whether line, as read from the wire with its CRLF, is
// a valid field line of a chunked body's trailer section, or the empty line
// that ends it (end).
func TrailerLine(line []byte) (valid, end bool) {
	n := len(line)
	if n < 2 || line[n-2] != '\r' || line[n-1] != '\n' {
		return false, false
	}
	if n == 2 {
		return true, true
	}
	_, ok := parseField(string(line[:n-2]), classObsValue)
	return ok, false
}

// HasToken reports whether the comma-separated list v holds token (ASCII
// case-insensitive), ignoring parameters: HasToken("trailers, deflate;q=0.5",
// "trailers").
func HasToken(v, token string) bool {
	for v != "" {
		var item string
		item, v, _ = strings.Cut(v, ",")
		item, _, _ = strings.Cut(item, ";")
		if EqualFold(trimOWS(item), token) {
			return true
		}
	}
	return false
}
