package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/errdefs"
)

// FleetPlacer asks the front door's placement dry run
// (POST /v1/fleet/placement), which runs the create pipeline's checks and
// the scheduler and takes nothing.
type FleetPlacer struct {
	// HTTP reaches the front door (in Clocker: the in-process client's).
	HTTP *http.Client
	// URL is the front door's base, e.g. http://clocker.inprocess.
	URL string
}

// Explain answers the host a create would go to, or the refusal the
// create would get (ErrNoHostFits, naming each host's reason).
func (p FleetPlacer) Explain(ctx context.Context, create client.ContainerCreateOptions) (string, error, error) {
	body, err := json.Marshal(container.CreateRequest{Config: create.Config, HostConfig: create.HostConfig, NetworkingConfig: create.NetworkingConfig})
	if err != nil {
		return "", nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/v1/fleet/placement", bytes.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.HTTP.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("placement dry run: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		// A refused body (a malformed constraint, say) is the user's.
		return "", errdefs.FromEngine(resp.StatusCode, raw), nil
	}
	var out struct {
		Host   string
		Status int
		Error  string
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", nil, fmt.Errorf("placement dry run: %w", err)
	}
	if out.Host == "" {
		return "", errdefs.New(kindOf(out.Status), out.Error), nil
	}
	return out.Host, nil, nil
}

// kindOf is the error kind of the status a create would get.
func kindOf(status int) error {
	switch status {
	case http.StatusNotFound:
		return errdefs.ErrNotFound
	case http.StatusBadRequest:
		return errdefs.ErrInvalid
	case http.StatusServiceUnavailable:
		return errdefs.ErrUnavailable
	}
	return errdefs.ErrConflict // 409: no host fits
}

var _ Placer = FleetPlacer{}
