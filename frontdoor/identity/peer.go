package identity

import (
	"context"
	"net"
	"os/user"
	"strconv"
)

// peer is the local user at the other end of a unix socket connection.
type peer struct {
	uid  int
	name string
}

type peerKey struct{}

// ConnContext is an http.Server ConnContext: it records who is at the
// other end of a unix socket connection (SO_PEERCRED), which the
// socket's file mode already admitted.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	uid, ok := peerUID(uc)
	if !ok {
		return ctx
	}
	name := "uid:" + strconv.Itoa(uid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		name = u.Username
	}
	return context.WithValue(ctx, peerKey{}, peer{uid: uid, name: name})
}
