package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/clocker/clocker/hosts"
)

// rawStreamTypes are the content types with which an engine takes over the
// connection after a 200 (clients that did not ask to upgrade).
var rawStreamTypes = []string{"application/vnd.docker.raw-stream", "application/vnd.docker.multiplexed-stream"}

// hijack carries attach and exec start: the engine answers 101 UPGRADED (or
// 200 with a raw stream) and then both sides exchange raw bytes. Each
// direction is copied on its own and its end is passed on as a half-close,
// so `echo x | docker run -i img cat` sees its output after stdin ends.
func (s *Server) hijack(w http.ResponseWriter, r *http.Request, h *hosts.Host, path string, body []byte) error {
	if !h.Healthy() && h.LastError() != nil {
		return h.Unavailable()
	}
	upstream, upReader, resp, err := s.sendRaw(r, h, path, body, false)
	if err != nil {
		return err
	}
	if !isTakeover(resp) {
		// An error, or a detached exec start: an ordinary response.
		defer upstream.Close()
		s.copyResponse(w, resp)
		return nil
	}

	client, clientBuf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		upstream.Close()
		return fmt.Errorf("hijack: %w", err)
	}
	defer client.Close()
	defer upstream.Close()
	// Write the status line as the engine did (101 UPGRADED or 200 OK).
	var head strings.Builder
	fmt.Fprintf(&head, "HTTP/1.1 %s\r\n", resp.Status)
	resp.Header.Set("Api-Version", s.Fleet.APIVersion(fallbackAPIVersion))
	_ = resp.Header.Write(&head)
	head.WriteString("\r\n")
	if _, err := clientBuf.WriteString(head.String()); err != nil {
		return nil
	}
	if err := clientBuf.Flush(); err != nil {
		return nil
	}
	// clientBuf.Reader still holds any stdin the client sent right after
	// its request; upReader any output read past the response head.
	pipe(client, clientBuf.Reader, upstream, upReader)
	return nil
}

func isTakeover(resp *http.Response) bool {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return true
	}
	if resp.StatusCode != http.StatusOK {
		return false
	}
	ct := resp.Header.Get("Content-Type")
	for _, t := range rawStreamTypes {
		if strings.HasPrefix(ct, t) {
			return true
		}
	}
	return false
}

func queryOf(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return "?" + r.URL.RawQuery
}

// closeWriter is a connection that can send FIN while still reading.
type closeWriter interface {
	CloseWrite() error
}

// pipe copies client→upstream and upstream→client until the output ends.
// Input ending first is passed on as a half-close and output goes on; once
// the output has ended, the session is over.
func pipe(client net.Conn, fromClient io.Reader, upstream net.Conn, fromUpstream *bufio.Reader) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(upstream, fromClient)
		if cw, ok := upstream.(closeWriter); ok {
			_ = cw.CloseWrite()
		}
	}()
	_, _ = copyOutput(client, fromUpstream, upstream)
	if cw, ok := client.(closeWriter); ok {
		_ = cw.CloseWrite()
	}
	// Output is done: give the input side a moment to finish on its own
	// (the client closes after reading EOF), then cut it.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		client.Close()
		upstream.Close()
		<-done
	}
}
