package h1

// HTTP/1.1 on buffered connections, for the fast path: reading response
// heads, relaying bodies in each framing, and writing heads.

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
)

// MaxResponseHead bounds an upstream's response head (as
// upstream.NewTransport's MaxResponseHeaderBytes).
const MaxResponseHead = 64 << 10

// Max1xx bounds the informational responses (103 Early Hints) relayed
// before the final one.
const Max1xx = 8

// ReadResponse reads the next response head from br into resp.
func ReadResponse(br *bufio.Reader, resp *Response) error {
	head, err := readResponseHead(br)
	if err != nil {
		return err
	}
	return ParseResponse(head, resp)
}

// readResponseHead reads one response head: from the buffer when it fits,
// line by line up to MaxResponseHead when it does not.
func readResponseHead(br *bufio.Reader) (string, error) {
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			return "", err
		}
	}
	for {
		b, _ := br.Peek(br.Buffered())
		n, err := HeadEnd(b)
		if err != nil {
			return "", ErrMalformed
		}
		if n > 0 {
			head := string(b[:n])
			_, _ = br.Discard(n)
			return head, nil
		}
		if br.Buffered() == br.Size() {
			break
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return "", err
		}
	}
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				err = ErrMalformed
			}
			return "", err
		}
		head = append(head, line...)
		if len(head) > MaxResponseHead {
			return "", ErrTooManyFields
		}
		if len(line) == 2 && line[0] == '\r' {
			return string(head), nil
		}
	}
}

// CopyN copies n bytes from src to dst, flushing dst whenever src has
// nothing buffered (so a slow stream is not held back). rerr is a read
// error (or io.ErrUnexpectedEOF), werr a write error.
func CopyN(dst *bufio.Writer, src *bufio.Reader, n int64) (written int64, rerr, werr error) {
	for written < n {
		if src.Buffered() == 0 {
			if werr = dst.Flush(); werr != nil {
				return written, nil, werr
			}
			if _, rerr = src.Peek(1); rerr != nil {
				if rerr == io.EOF {
					rerr = io.ErrUnexpectedEOF
				}
				return written, rerr, nil
			}
		}
		b, _ := src.Peek(int(min(int64(src.Buffered()), n-written)))
		if _, werr = dst.Write(b); werr != nil {
			return written, nil, werr
		}
		_, _ = src.Discard(len(b))
		written += int64(len(b))
	}
	return written, nil, nil
}

// RelayChunked relays a chunked body as it is framed, checking the framing
// (so the client receives exactly one well-formed message), trailers
// included. written counts payload bytes.
func RelayChunked(dst *bufio.Writer, src *bufio.Reader) (written int64, rerr, werr error) {
	for {
		if src.Buffered() == 0 {
			if werr = dst.Flush(); werr != nil {
				return written, nil, werr
			}
		}
		line, err := src.ReadSlice('\n')
		if err != nil {
			return written, chunkErr(err), nil
		}
		size, ok := ChunkSize(line)
		if !ok {
			return written, ErrMalformed, nil
		}
		if _, werr = dst.Write(line); werr != nil {
			return written, nil, werr
		}
		if size == 0 {
			for i := 0; ; i++ {
				line, err := src.ReadSlice('\n')
				if err != nil {
					return written, chunkErr(err), nil
				}
				valid, end := TrailerLine(line)
				if !valid || i == MaxFields && !end {
					return written, ErrMalformed, nil
				}
				if _, werr = dst.Write(line); werr != nil || end {
					return written, nil, werr
				}
			}
		}
		n, rerr, werr := CopyN(dst, src, size)
		written += n
		if rerr != nil || werr != nil {
			return written, rerr, werr
		}
		crlf, err := src.Peek(2)
		if err != nil {
			return written, chunkErr(err), nil
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return written, ErrMalformed, nil
		}
		_, _ = src.Discard(2)
		if _, werr = dst.WriteString("\r\n"); werr != nil {
			return written, nil, werr
		}
	}
}

func chunkErr(err error) error {
	switch err {
	case io.EOF:
		return io.ErrUnexpectedEOF
	case bufio.ErrBufferFull:
		return ErrMalformed
	}
	return err
}

// RelayUntilClose relays a body that ends when the upstream closes,
// re-framed as chunks: the client's connection can stay open.
func RelayUntilClose(dst *bufio.Writer, src *bufio.Reader) (written int64, rerr, werr error) {
	var sizeLine [20]byte
	for {
		if src.Buffered() == 0 {
			if werr = dst.Flush(); werr != nil {
				return written, nil, werr
			}
			if _, err := src.Peek(1); err != nil {
				if err == io.EOF {
					_, werr = dst.WriteString("0\r\n\r\n")
					return written, nil, werr
				}
				return written, err, nil
			}
		}
		b, _ := src.Peek(src.Buffered())
		line := append(strconv.AppendInt(sizeLine[:0], int64(len(b)), 16), '\r', '\n')
		_, _ = dst.Write(line)
		_, _ = dst.Write(b)
		if _, werr = dst.WriteString("\r\n"); werr != nil {
			return written, nil, werr
		}
		_, _ = src.Discard(len(b))
		written += int64(len(b))
	}
}

// WriteStatusLine writes a status line.
func WriteStatusLine(w *bufio.Writer, status int, reason string) {
	_, _ = w.WriteString("HTTP/1.1 ")
	if status < 100 || status > 999 {
		status = http.StatusBadGateway // never: h1 parses three digits
	}
	_ = w.WriteByte(byte('0' + status/100))
	_ = w.WriteByte(byte('0' + status/10%10))
	_ = w.WriteByte(byte('0' + status%10))
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(reason)
	_, _ = w.WriteString("\r\n")
}

// WriteField writes one header field line.
func WriteField(w *bufio.Writer, name, value string) {
	_, _ = w.WriteString(name)
	_, _ = w.WriteString(": ")
	_, _ = w.WriteString(value)
	_, _ = w.WriteString("\r\n")
}
