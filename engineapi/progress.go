package engineapi

// The progress streams of pull and load (newline-delimited JSON messages),
// as the fleet merges many engines' streams into one.

import (
	"bytes"
	"encoding/json"
	"slices"
)

// PrefixProgress marks one progress message with its host: the id when
// there is one (so that each host's layers get their own progress lines),
// else the status, else the stream text. An error message is returned as
// its text instead. Lines that are not JSON objects pass as they are.
func PrefixProgress(host string, line []byte) (out []byte, errMsg string, isErr bool) {
	line = bytes.TrimRight(line, "\r\n")
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil || m == nil {
		return append(slices.Clone(line), '\n'), "", false
	}
	if msg, ok := progressError(m, line); ok {
		return nil, msg, true
	}
	for _, key := range []string{"id", "status", "stream"} {
		var v string
		if raw, ok := m[key]; ok && json.Unmarshal(raw, &v) == nil && v != "" {
			m[key], _ = json.Marshal(host + ": " + v)
			break
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return append(slices.Clone(line), '\n'), "", false
	}
	return append(b, '\n'), "", false
}

// ProgressError is Docker's error message inside a progress stream,
// ended as an engine ends one ("\r\n").
func ProgressError(msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorDetail struct {
			Message string `json:"message"`
		} `json:"errorDetail"`
		Error string `json:"error"`
	}{ErrorDetail: struct {
		Message string `json:"message"`
	}{msg}, Error: msg})
	return append(b, '\r', '\n')
}

// progressError is the text of an error message of a progress stream
// (m is the message decoded, line its bytes).
func progressError(m map[string]json.RawMessage, line []byte) (string, bool) {
	_, hasDetail := m["errorDetail"]
	_, hasErr := m["error"]
	if !hasDetail && !hasErr {
		return "", false
	}
	var e struct {
		Error       string `json:"error"`
		ErrorDetail struct {
			Message string `json:"message"`
		} `json:"errorDetail"`
	}
	_ = json.Unmarshal(line, &e)
	if e.ErrorDetail.Message != "" {
		return e.ErrorDetail.Message, true
	}
	return e.Error, true
}

// LoadStream merges the streams of engines loading the same archive (docker
// load) into what one engine answers, so that a client that reads
// "Loaded image: …" and "Loaded image ID: …" lines (the docker CLI, the
// SDKs) reads each once and as it is: a layer's progress comes from the
// first host that reports that layer (the others' is dropped); every
// other message is held until every host has ended, then written once,
// in the order of the first host that said it (Tail). Its methods are not
// safe for concurrent use.
type LoadStream struct {
	owner map[string]int // progress ID → the host whose progress shows
	held  [][][]byte     // per host, its messages held for Tail
}

// NewLoadStream merges the streams of n hosts.
func NewLoadStream(n int) *LoadStream {
	return &LoadStream{owner: map[string]int{}, held: make([][][]byte, n)}
}

// Line takes one message of host src: what to write now (nil: nothing),
// or, when isErr, the host's error text.
func (l *LoadStream) Line(src int, line []byte) (out []byte, errMsg string, isErr bool) {
	if !bytes.HasSuffix(line, []byte("\n")) {
		line = append(slices.Clip(line), '\r', '\n') // as an engine ends its messages
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(line, &m) == nil && m != nil {
		if msg, ok := progressError(m, line); ok {
			return nil, msg, true
		}
		var id string
		if raw, ok := m["id"]; ok && json.Unmarshal(raw, &id) == nil && id != "" {
			if owner, ok := l.owner[id]; ok && owner != src {
				return nil, "", false
			}
			l.owner[id] = src
			return slices.Clone(line), "", false
		}
	}
	l.held[src] = append(l.held[src], slices.Clone(line))
	return nil, "", false
}

// Tail is the held messages, each once, as the engines wrote them: the
// first host's, then those of the next host that the ones before did not
// say, and so on.
func (l *LoadStream) Tail() []byte {
	var out []byte
	seen := map[string]bool{}
	for _, msgs := range l.held {
		for _, m := range msgs {
			key := string(bytes.TrimRight(m, "\r\n"))
			if !seen[key] {
				seen[key] = true
				out = append(out, m...)
			}
		}
	}
	return out
}
