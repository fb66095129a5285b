package engineapi

import (
	"encoding/json"
	"fmt"
)

// MergeDiskUsage merges the engines' GET /system/df answers (API 1.41
// shape) into the fleet's: LayersSize and BuilderSize summed, Images merged
// by Id (containers using it summed, tags and digests united, sizes from
// the first host that has it), Containers, Volumes and BuildCache
// concatenated in host order. Other fields are the first answer's. A list
// every engine gave as null stays null.
func MergeDiskUsage(parts [][]byte) ([]byte, error) {
	out := map[string]json.RawMessage{}
	var (
		sums     = map[string]int64{}
		lists    = map[string][]json.RawMessage{}
		present  = map[string]bool{}
		images   []map[string]json.RawMessage
		imageIdx = map[string]int{}
	)
	sumKeys := []string{"LayersSize", "BuilderSize"}
	listKeys := []string{"Containers", "Volumes", "BuildCache"}
	for i, part := range parts {
		var du map[string]json.RawMessage
		if err := json.Unmarshal(part, &du); err != nil {
			return nil, fmt.Errorf("system df of host %d: %w", i, err)
		}
		for k, v := range du {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
		for _, k := range sumKeys {
			v, ok := du[k]
			if !ok || isNull(v) {
				continue
			}
			var n int64
			if err := json.Unmarshal(v, &n); err != nil {
				return nil, fmt.Errorf("system df %s: %w", k, err)
			}
			sums[k] += n
			present[k] = true
		}
		for _, k := range listKeys {
			v, ok := du[k]
			if !ok || isNull(v) {
				continue
			}
			var l []json.RawMessage
			if err := json.Unmarshal(v, &l); err != nil {
				return nil, fmt.Errorf("system df %s: %w", k, err)
			}
			for _, o := range l {
				lists[k] = append(lists[k], HideBookkeeping(o, "Labels"))
			}
			present[k] = true
		}
		if v, ok := du["Images"]; ok && !isNull(v) {
			var l []map[string]json.RawMessage
			if err := json.Unmarshal(v, &l); err != nil {
				return nil, fmt.Errorf("system df Images: %w", err)
			}
			present["Images"] = true
			for _, img := range l {
				var id string
				_ = json.Unmarshal(img["Id"], &id)
				j, seen := imageIdx[id]
				if !seen || id == "" {
					imageIdx[id] = len(images)
					images = append(images, img)
					continue
				}
				if err := mergeDFImage(images[j], img); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, k := range sumKeys {
		if present[k] {
			out[k], _ = json.Marshal(sums[k])
		}
	}
	for _, k := range listKeys {
		if present[k] {
			l := lists[k]
			if l == nil {
				l = []json.RawMessage{}
			}
			out[k], _ = json.Marshal(l)
		}
	}
	if present["Images"] {
		if images == nil {
			images = []map[string]json.RawMessage{}
		}
		b, err := json.Marshal(images)
		if err != nil {
			return nil, err
		}
		out["Images"] = b
	}
	return json.Marshal(out)
}

// mergeDFImage folds another host's copy of an image into the first: the
// containers using it add up (-1, "not computed", counts as nothing), and
// the tags and digests are united.
func mergeDFImage(dst, src map[string]json.RawMessage) error {
	var a, b int64 = -1, -1
	_ = json.Unmarshal(dst["Containers"], &a)
	_ = json.Unmarshal(src["Containers"], &b)
	if b >= 0 {
		dst["Containers"], _ = json.Marshal(max(a, 0) + b)
	}
	for _, k := range []string{"RepoTags", "RepoDigests"} {
		var x, y []string
		_ = json.Unmarshal(dst[k], &x)
		_ = json.Unmarshal(src[k], &y)
		if len(y) == 0 {
			continue
		}
		have := map[string]bool{}
		for _, v := range x {
			have[v] = true
		}
		for _, v := range y {
			if !have[v] {
				have[v] = true
				x = append(x, v)
			}
		}
		b, err := json.Marshal(x)
		if err != nil {
			return err
		}
		dst[k] = b
	}
	return nil
}

func isNull(v json.RawMessage) bool { return string(v) == "null" }
