package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

// sendRaw dials the host, writes the client's request to it under path
// (with body) and reads the answer's head. The connection is the caller's
// to close; the reader holds whatever arrived past the head. With
// closeAfter the engine is asked to close the connection when it is done,
// which is how a raw stream's end is known.
func (s *Server) sendRaw(r *http.Request, h *hosts.Host, path string, body []byte, closeAfter bool) (net.Conn, *bufio.Reader, *http.Response, error) {
	if !h.Healthy() && h.LastError() != nil {
		return nil, nil, nil, h.Unavailable()
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	upstream, err := h.Dial(ctx)
	cancel()
	if err != nil {
		return nil, nil, nil, s.upstreamFailed(r.Context(), h, err)
	}
	out, err := http.NewRequest(r.Method, "http://"+h.Endpoint.Base.Host+"/v"+upstreamVersion(r, h)+path+queryOf(r), bytes.NewReader(body))
	if err != nil {
		upstream.Close()
		return nil, nil, nil, err
	}
	for k, vs := range r.Header {
		out.Header[k] = vs
	}
	out.ContentLength = int64(len(body))
	if len(body) == 0 {
		out.Body = nil
	}
	out.Close = closeAfter
	if err := out.Write(upstream); err != nil {
		upstream.Close()
		return nil, nil, nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: %v", h.Name, err))
	}
	upReader := bufio.NewReader(upstream)
	resp, err := http.ReadResponse(upReader, out)
	if err != nil {
		upstream.Close()
		return nil, nil, nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: %v", h.Name, err))
	}
	return upstream, upReader, resp, nil
}

// copyResponse relays an ordinary engine answer with the fleet's headers.
func (s *Server) copyResponse(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	setEngineHeaders(w.Header(), s.Fleet.APIVersion(fallbackAPIVersion), s.serverHeader())
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// streamContainer relays a long one-way answer (logs, export) byte for byte:
// the engine's head with the fleet's headers, then its body still in the
// engine's framing, copied connection to connection so the kernel moves
// the bytes (splice) instead of a read, re-chunk and flush per piece. Each
// side closes when the engine has sent everything; a client that goes
// away ends the engine's side too (logs --follow would otherwise hold it).
func (s *Server) streamContainer(w http.ResponseWriter, r *http.Request) error {
	h, c, err := s.resolve(r)
	if err != nil {
		return err
	}
	upstream, upReader, resp, err := s.sendRaw(r, h, containerPath(r, c.ID()), nil, true)
	if err != nil {
		return err
	}
	defer upstream.Close()
	if resp.StatusCode != http.StatusOK {
		s.copyResponse(w, resp)
		return nil
	}
	client, clientBuf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (a test recorder): an ordinary relay.
		s.copyResponse(w, resp)
		return nil
	}
	defer client.Close()
	setEngineHeaders(resp.Header, s.Fleet.APIVersion(fallbackAPIVersion), s.serverHeader())
	resp.Header.Del("Content-Length")
	resp.Header.Del("Transfer-Encoding")
	resp.Header.Set("Connection", "close")
	var head bytes.Buffer
	fmt.Fprintf(&head, "HTTP/1.1 %s\r\n", resp.Status)
	_ = resp.Header.Write(&head)
	switch {
	case len(resp.TransferEncoding) > 0:
		fmt.Fprintf(&head, "Transfer-Encoding: %s\r\n", resp.TransferEncoding[0])
	case resp.ContentLength >= 0:
		head.WriteString("Content-Length: " + strconv.FormatInt(resp.ContentLength, 10) + "\r\n")
	}
	head.WriteString("\r\n")
	// What the engine sent past its head is still in upReader.
	if n := upReader.Buffered(); n > 0 {
		early, _ := upReader.Peek(n)
		head.Write(early)
	}
	if _, err := clientBuf.Write(head.Bytes()); err != nil {
		return nil
	}
	if err := clientBuf.Flush(); err != nil {
		return nil
	}
	go func() {
		// A GET sends nothing more: a read ending means the client left.
		_, _ = io.Copy(io.Discard, client)
		upstream.Close()
	}()
	if engineapi.QueryBool(r.URL.Query(), "follow") {
		_, _ = burstCopy(client, upstream) // each line when it comes
		return nil
	}
	// Engines write logs a line per write, each flushed: woken per line,
	// the relay spent ten times more CPU on scheduling than on bytes, CPU
	// the engine needed on a small machine. A stream that ends by itself
	// ends with the engine's FIN, which wakes a reader whatever the
	// low-water mark: wake only for big pieces till then.
	setReadLowWater(upstream, burstLowWater)
	_, _ = io.Copy(client, upstream) // spliced by the kernel
	return nil
}
