package placement

import (
	"fmt"
	"testing"
)

func TestDecisionLogBounded(t *testing.T) {
	var l decisionLog
	for i := range decisionsKept + 10 {
		l.add(Record{ID: fmt.Sprint(i), Host: "h1"})
	}
	if _, ok := l.get("0"); ok {
		t.Error("the oldest decision is still kept past the bound")
	}
	if _, ok := l.get("9"); ok {
		t.Error("decision 9 is still kept past the bound")
	}
	if r, ok := l.get(fmt.Sprint(decisionsKept + 9)); !ok || r.Host != "h1" {
		t.Errorf("the newest decision: %+v %v", r, ok)
	}
	if len(l.byID) != decisionsKept || len(l.order) != decisionsKept {
		t.Errorf("%d kept by ID, %d in order, want %d", len(l.byID), len(l.order), decisionsKept)
	}
}
