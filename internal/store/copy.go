package store

import (
	"encoding/json"
	"fmt"
)

// Copy writes every record of from into to, bucket by bucket, and says
// how many it copied of each. A key to already holds is a conflict
// (nothing of it is changed) unless overwrite.
func Copy(from, to Store, overwrite bool) (map[string]int, error) {
	counts := map[string]int{}
	for _, b := range Buckets {
		err := from.ForEach(b, func(k string, v []byte) error {
			var err error
			if overwrite {
				err = to.Put(b, k, json.RawMessage(v))
			} else {
				err = to.Create(b, k, json.RawMessage(v))
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", b, k, err)
			}
			counts[string(b)]++
			return nil
		})
		if err != nil {
			return counts, err
		}
	}
	return counts, nil
}
