package placement

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/clocker/clocker/hosts"
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
	var wg sync.WaitGroup
	for _, i := range ask {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, status, err := all[i].GetJSON(ctx, "/images/"+image+"/json", nil)
			out[i] = err == nil && status == http.StatusOK
		}()
	}
	wg.Wait()
	return out
}

// imageCount is how many images a host holds, as it last said in /info.
func imageCount(h *hosts.Host) int {
	var in struct{ Images int }
	_ = json.Unmarshal(h.Facts().Info, &in)
	return in.Images
}
