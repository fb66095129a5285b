package fanout

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

func TestTee(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 100_000) // 1.6 MB, several chunks
	tests := []struct {
		name     string
		quitters int // readers that stop after the first read
		readers  int
		srcErr   error
	}{
		{name: "every host gets everything", readers: 3},
		{name: "a host that stops does not stall the others", readers: 3, quitters: 1},
		{name: "every host stops", readers: 2, quitters: 2},
		{name: "source error reaches every host", readers: 2, srcErr: errors.New("client went away")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(data)
			if tt.srcErr != nil {
				src = io.MultiReader(bytes.NewReader(data[:1000]), &failingReader{tt.srcErr})
			}
			readers := make([]*io.PipeReader, tt.readers)
			writers := make([]*io.PipeWriter, tt.readers)
			for i := range readers {
				readers[i], writers[i] = io.Pipe()
			}
			done := make(chan struct{})
			go func() { Tee(src, writers); close(done) }()
			got := make([][]byte, tt.readers)
			errs := make([]error, tt.readers)
			finished := make(chan int)
			for i := range readers {
				go func() {
					if i < tt.quitters {
						buf := make([]byte, 10)
						_, _ = readers[i].Read(buf)
						readers[i].CloseWithError(errors.New("host answered"))
					} else {
						got[i], errs[i] = io.ReadAll(readers[i])
					}
					finished <- i
				}()
			}
			for range readers {
				select {
				case <-finished:
				case <-time.After(30 * time.Second):
					t.Fatal("a reader is stuck")
				}
			}
			<-done
			for i := tt.quitters; i < tt.readers; i++ {
				switch {
				case tt.srcErr != nil:
					if !errors.Is(errs[i], tt.srcErr) {
						t.Errorf("reader %d: err %v, want %v", i, errs[i], tt.srcErr)
					}
				case errs[i] != nil || !bytes.Equal(got[i], data):
					t.Errorf("reader %d: %d bytes of %d, err %v", i, len(got[i]), len(data), errs[i])
				}
			}
		})
	}
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }
