package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Request is what dockerd sends to /AuthZPlugin.AuthZReq and, with the
// response fields filled, to /AuthZPlugin.AuthZRes (moby
// pkg/authorization, api.go): field names and JSON keys as dockerd's, so
// existing plugins work unchanged.
type Request struct {
	User                    string            `json:"User,omitempty"`
	UserAuthNMethod         string            `json:"UserAuthNMethod,omitempty"`
	RequestMethod           string            `json:"RequestMethod,omitempty"`
	RequestURI              string            `json:"RequestUri,omitempty"`
	RequestBody             []byte            `json:"RequestBody,omitempty"`
	RequestHeaders          map[string]string `json:"RequestHeaders,omitempty"`
	RequestPeerCertificates []PeerCertificate `json:"RequestPeerCertificates,omitempty"`
	ResponseStatusCode      int               `json:"ResponseStatusCode,omitempty"`
	ResponseBody            []byte            `json:"ResponseBody,omitempty"`
	ResponseHeaders         map[string]string `json:"ResponseHeaders,omitempty"`
}

// PeerCertificate is a client certificate, sent as its PEM (base64 in
// JSON, as dockerd sends it).
type PeerCertificate []byte

// MarshalJSON encodes the DER certificate as PEM bytes.
func (pc PeerCertificate) MarshalJSON() ([]byte, error) {
	return json.Marshal(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pc}))
}

// Response is a plugin's answer.
type Response struct {
	Allow bool   `json:"Allow"`
	Msg   string `json:"Msg,omitempty"`
	Err   string `json:"Err,omitempty"`
}

// The plugin protocol's media type (moby pkg/plugins).
const pluginMediaType = "application/vnd.docker.plugins.v1.2+json"

// MaxPluginBody is dockerd's limit on the bodies sent to plugins: a JSON
// request body larger than this is refused, a response body is not sent.
const MaxPluginBody = 1 << 20

// Plugin is an authorization plugin reached over HTTP.
type Plugin struct {
	// Name is how refusals name it ("authorization denied by plugin N").
	Name   string
	base   *url.URL
	client *http.Client
}

// NewPlugin makes the client of a plugin at raw: http://HOST:PORT[/PREFIX],
// https://…, or unix:///PATH (a plugin socket as under /run/docker/plugins).
func NewPlugin(raw string) (*Plugin, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--authorization-plugin %q: %v", raw, err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second}
	p := &Plugin{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("--authorization-plugin %q: no host", raw)
		}
		p.base, p.Name = u, u.Host
	case "unix":
		if u.Path == "" {
			return nil, fmt.Errorf("--authorization-plugin %q: want unix:///PATH", raw)
		}
		sock := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		p.base = &url.URL{Scheme: "http", Host: "plugin"}
		p.Name = strings.TrimSuffix(sock[strings.LastIndex(sock, "/")+1:], ".sock")
	default:
		return nil, fmt.Errorf("--authorization-plugin %q: scheme must be http://, https:// or unix://", raw)
	}
	return p, nil
}

// Activate is the plugin handshake dockerd makes first: the plugin must
// say it implements "authz".
func (p *Plugin) Activate(ctx context.Context) error {
	var a struct{ Implements []string }
	if err := p.post(ctx, "Plugin.Activate", struct{}{}, &a); err != nil {
		return fmt.Errorf("authorization plugin %s: %w", p.Name, err)
	}
	if !slices.Contains(a.Implements, "authz") {
		return fmt.Errorf("authorization plugin %s implements %v, not authz", p.Name, a.Implements)
	}
	return nil
}

// AuthZReq asks the plugin about a request.
func (p *Plugin) AuthZReq(ctx context.Context, req *Request) (*Response, error) {
	var res Response
	return &res, p.post(ctx, "AuthZPlugin.AuthZReq", req, &res)
}

// AuthZRes asks the plugin about a response.
func (p *Plugin) AuthZRes(ctx context.Context, req *Request) (*Response, error) {
	var res Response
	return &res, p.post(ctx, "AuthZPlugin.AuthZRes", req, &res)
}

func (p *Plugin) post(ctx context.Context, method string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	u := p.base.JoinPath(method)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", pluginMediaType)
	hreq.Header.Set("Accept", pluginMediaType)
	resp, err := p.client.Do(hreq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		// A plugin's error answer is {"Err": …}.
		var e struct{ Err string }
		if json.Unmarshal(raw, &e) == nil && e.Err != "" {
			return errors.New(e.Err)
		}
		return fmt.Errorf("%s: %s", method, resp.Status)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: answer is not JSON: %v", method, err)
	}
	if r, ok := out.(*Response); ok && r.Err != "" {
		return errors.New(r.Err)
	}
	return nil
}
