package proxy

import (
	"io"
	"testing"
)

func TestSpillBuffer(t *testing.T) {
	b := &spillBuffer{memLimit: 10}
	defer b.Close()
	for _, s := range []string{"01234", "56789", "abcdef", "g"} {
		if _, err := b.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if b.file == nil {
		t.Fatal("did not spill past memLimit")
	}
	r, err := b.Reader()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if string(got) != "0123456789abcdefg" {
		t.Fatalf("got %q", got)
	}
}
