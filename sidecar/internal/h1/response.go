package h1

// Response is a parsed response head.
type Response struct {
	Status int
	// Reason is the reason phrase, possibly empty.
	Reason string
	// HTTP11 is false for an HTTP/1.0 response.
	HTTP11 bool
	// Chunked: the body is in chunked transfer coding.
	Chunked bool
	// ContentLength is the declared body size, -1 when there is none.
	ContentLength int64
	// Close: the upstream closes the connection after this response.
	Close bool
	// Fields are the header fields in order.
	Fields []Field
	// Hop lists the indexes of Fields that are hop-by-hop (Connection,
	// Keep-Alive, Transfer-Encoding, the options Connection names, ...):
	// a proxy does not forward them.
	Hop []int
}

// ParseResponse parses head, one whole response head, into r (reusing its
// slices). It returns ErrMalformed or ErrTooManyFields for heads a proxy
// must not forward.
func ParseResponse(head string, r *Response) error {
	*r = Response{Fields: r.Fields[:0], Hop: r.Hop[:0], ContentLength: -1}
	line, rest, ok := cutLine(head)
	if !ok || len(line) < len("HTTP/1.1 200") {
		return ErrMalformed
	}
	switch line[:len("HTTP/1.1")] {
	case "HTTP/1.1":
		r.HTTP11 = true
	case "HTTP/1.0":
	default:
		return ErrMalformed
	}
	code := line[len("HTTP/1.1"):]
	if code[0] != ' ' || len(code) > 4 && code[4] != ' ' {
		return ErrMalformed
	}
	for i := 1; i <= 3; i++ {
		if code[i] < '0' || code[i] > '9' {
			return ErrMalformed
		}
	}
	r.Status = int(code[1]-'0')*100 + int(code[2]-'0')*10 + int(code[3]-'0')
	if r.Status < 100 {
		return ErrMalformed
	}
	if len(code) > 4 {
		r.Reason = code[5:]
		for i := 0; i < len(r.Reason); i++ {
			if class[r.Reason[i]]&classObsValue == 0 {
				return ErrMalformed
			}
		}
	}
	keepAlive := false
	length := ""             // the first Content-Length value
	badTrailer := false      // Trailer names a framing field
	connectionNames := false // Connection names other fields
	for {
		if line, rest, ok = cutLine(rest); !ok {
			return ErrMalformed
		}
		if line == "" {
			break
		}
		f, ok := parseField(line, classObsValue)
		if !ok {
			return ErrMalformed
		}
		if len(r.Fields) == MaxResponseFields {
			return ErrTooManyFields
		}
		i := len(r.Fields)
		r.Fields = append(r.Fields, f)
		switch {
		case equalFold(f.Name, "content-length"):
			// Repeats must be the same text: net/http refuses "5" and
			// "05" together, and so does this parser.
			n, ok := parseLength(f.Value)
			if !ok || r.ContentLength >= 0 && f.Value != length {
				return ErrMalformed
			}
			r.ContentLength, length = n, f.Value
		case equalFold(f.Name, "transfer-encoding"):
			// Only "chunked" is a framing a proxy can relay; anything
			// else (gzip, chunked) is not HTTP/1.1 a client can trust.
			// In HTTP/1.0 the field does not exist (RFC 9112 §6.1: the
			// framing is faulty), and net/http ignores it there, so the
			// two would read different bodies.
			if r.Chunked || !r.HTTP11 || !equalFold(f.Value, "chunked") {
				return ErrMalformed
			}
			r.Chunked = true
			r.addHop(i)
		case equalFold(f.Name, "trailer"):
			badTrailer = badTrailer || namesFraming(f.Value)
		case equalFold(f.Name, "connection"):
			r.addHop(i)
			for v := f.Value; v != ""; {
				var opt string
				switch opt, v = nextElement(v); {
				case opt == "":
				case equalFold(opt, "close"):
					r.Close = true
				case equalFold(opt, "keep-alive"):
					keepAlive = true
				case !isToken(opt):
					return ErrMalformed
				default:
					connectionNames = true
				}
			}
		case isHopByHop(f.Name):
			r.addHop(i)
		}
	}
	if rest != "" {
		return ErrMalformed
	}
	if r.Chunked {
		// Trailer fields cannot reframe the message (RFC 9110 §6.5.1);
		// net/http refuses a chunked message that announces them.
		if badTrailer {
			return ErrMalformed
		}
		// RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, which
		// is then not forwarded either. Such a message "ought to be
		// handled as an error": the connection is not reused after it.
		for i, f := range r.Fields {
			if equalFold(f.Name, "content-length") {
				r.addHop(i)
				r.Close = true
			}
		}
		r.ContentLength = -1
	}
	if !r.HTTP11 && !keepAlive {
		r.Close = true
	}
	if !r.Chunked && r.ContentLength < 0 && r.Status >= 200 && r.Status != 204 && r.Status != 304 {
		// The body, if the request was not HEAD, ends when the upstream
		// closes the connection.
		r.Close = true
	}
	if connectionNames {
		// A second pass instead of remembering the options keeps the
		// parse free of allocation.
		for _, f := range r.Fields {
			if !equalFold(f.Name, "connection") {
				continue
			}
			for v := f.Value; v != ""; {
				var opt string
				if opt, v = nextElement(v); opt == "" {
					continue
				}
				for i := range r.Fields {
					if EqualFold(r.Fields[i].Name, opt) {
						r.addHop(i)
					}
				}
			}
		}
	}
	return nil
}

// addHop marks field i hop-by-hop, once: Hop never outgrows Fields.
func (r *Response) addHop(i int) {
	if !r.IsHop(i) {
		r.Hop = append(r.Hop, i)
	}
}

// namesFraming reports whether a Trailer value lists Content-Length,
// Transfer-Encoding or Trailer.
func namesFraming(v string) bool {
	for v != "" {
		var name string
		name, v = nextElement(v)
		if equalFold(name, "content-length") || equalFold(name, "transfer-encoding") || equalFold(name, "trailer") {
			return true
		}
	}
	return false
}

// IsHop reports whether field i of r is hop-by-hop.
func (r *Response) IsHop(i int) bool {
	for _, h := range r.Hop {
		if h == i {
			return true
		}
	}
	return false
}

// Bodyless reports whether a response to method with r's status has no
// body whatever its fields say (RFC 9112 §6.3).
func (r *Response) Bodyless(method string) bool {
	return method == "HEAD" || r.Status < 200 || r.Status == 204 || r.Status == 304 ||
		method == "CONNECT" && r.Status < 300
}
