package engineapi

import (
	"encoding/json"
	"fmt"

	"github.com/clocker/clocker/internal/errdefs"
)

// The engines' prune reports, summed over the hosts that pruned (image
// and build-cache reports: MergeImagePruneReports).

// ContainerPruneReport is the answer to POST /containers/prune.
type ContainerPruneReport struct {
	ContainersDeleted []string
	SpaceReclaimed    uint64
}

// VolumePruneReport is the answer to POST /volumes/prune.
type VolumePruneReport struct {
	VolumesDeleted []string
	SpaceReclaimed uint64
}

// NetworkPruneReport is the answer to POST /networks/prune.
type NetworkPruneReport struct {
	NetworksDeleted []string
}

// SumVolumePrunes sums the hosts' volume prune reports (bodies, by host
// in hosts); the list is empty, not null, when nothing was pruned.
func SumVolumePrunes(hosts []string, bodies [][]byte) (VolumePruneReport, error) {
	total := VolumePruneReport{VolumesDeleted: []string{}}
	err := eachReport(hosts, bodies, func(rep *VolumePruneReport) {
		total.VolumesDeleted = append(total.VolumesDeleted, rep.VolumesDeleted...)
		total.SpaceReclaimed += rep.SpaceReclaimed
	})
	return total, err
}

// SumNetworkPrunes joins the hosts' network prune reports.
func SumNetworkPrunes(hosts []string, bodies [][]byte) (NetworkPruneReport, error) {
	var total NetworkPruneReport
	err := eachReport(hosts, bodies, func(rep *NetworkPruneReport) {
		total.NetworksDeleted = append(total.NetworksDeleted, rep.NetworksDeleted...)
	})
	return total, err
}

// eachReport decodes every host's report and hands it to add; a report
// that does not decode is the host's failure.
func eachReport[R any](hosts []string, bodies [][]byte, add func(*R)) error {
	for i, b := range bodies {
		var rep R
		if err := json.Unmarshal(b, &rep); err != nil {
			return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad prune report: %v", hosts[i], err))
		}
		add(&rep)
	}
	return nil
}
