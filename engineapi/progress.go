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
	_, hasDetail := m["errorDetail"]
	_, hasErr := m["error"]
	if hasDetail || hasErr {
		var e struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		_ = json.Unmarshal(line, &e)
		msg := e.ErrorDetail.Message
		if msg == "" {
			msg = e.Error
		}
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
// newline-terminated.
func ProgressError(msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorDetail struct {
			Message string `json:"message"`
		} `json:"errorDetail"`
		Error string `json:"error"`
	}{ErrorDetail: struct {
		Message string `json:"message"`
	}{msg}, Error: msg})
	return append(b, '\n')
}
