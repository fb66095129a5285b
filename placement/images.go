package placement

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fanout"
)

// imagePresence tells, per host, whether it holds the image: from the
// host's image cache when it knows, else by asking the healthy hosts whose
// cache cannot tell (at once).
func imagePresence(ctx context.Context, all []*hosts.Host, image string) []bool {
	out := make([]bool, len(all))
	if image == "" {
		return out
	}
	var ask []int
	ref := hosts.ParseImageRef(image)
	for i, h := range all {
		if has, known := h.HasImageRef(ref); known {
			out[i] = has
			continue
		}
		if h.Healthy() {
			ask = append(ask, i)
		}
	}
	if len(ask) == 0 {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	answers := fanout.Each(ask, func(i int) (bool, error) {
		_, status, err := all[i].GetJSON(ctx, "/images/"+image+"/json", nil)
		return err == nil && status == http.StatusOK, nil
	})
	for j, i := range ask {
		out[i] = answers[j].Value
	}
	return out
}

// imageCount is how many images a host holds, as it last said in /info.
func imageCount(h *hosts.Host) int {
	var in struct{ Images int }
	_ = json.Unmarshal(h.Facts().Info, &in)
	return in.Images
}
