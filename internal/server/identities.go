package server

import (
	"net/http"
	"strings"
	"sync"

	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/authorizer/rbac"
)

// loopbackIdentities authenticates the server's own components on the
// loopback connection, each as itself: a random bearer token per identity,
// made when the server starts and known only to this process, so that
// every credential ends with the process. Only the API server's own
// machinery (bootstrap, its informers, encryption) acts as system:apiserver
// in system:masters, as upstream's loopback client does; the scheduler,
// the controller-manager and each controller get only what their
// bootstrap roles grant (upstream's --use-service-account-credentials).
type loopbackIdentities struct {
	mu      sync.RWMutex
	byToken map[string]*apiserver.User
	byName  map[string]string // user name -> token
}

func newLoopbackIdentities() *loopbackIdentities {
	return &loopbackIdentities{byToken: map[string]*apiserver.User{}, byName: map[string]string{}}
}

// The API server's own user on the loopback connection.
const userAPIServer = "system:apiserver"

// userFor is the user a loopback identity name stands for: a
// system:serviceaccount:<ns>:<name> user carries the groups of service
// accounts (the bootstrap bindings name the account); the others are
// plain users, system:apiserver also in system:masters.
func userFor(name string) *apiserver.User {
	groups := []string{rbac.GroupAuthenticated}
	switch {
	case name == userAPIServer:
		groups = []string{rbac.SystemMasters, rbac.GroupAuthenticated}
	case strings.HasPrefix(name, "system:serviceaccount:"):
		ns, _, _ := strings.Cut(strings.TrimPrefix(name, "system:serviceaccount:"), ":")
		groups = []string{rbac.GroupServiceAccounts, rbac.GroupServiceAccounts + ":" + ns, rbac.GroupAuthenticated}
	}
	return &apiserver.User{Name: name, Groups: groups}
}

// config is base acting as the user name (made on first use).
func (l *loopbackIdentities) config(base *rest.Config, name string) (*rest.Config, error) {
	l.mu.RLock()
	token, ok := l.byName[name]
	l.mu.RUnlock()
	if !ok {
		t, err := randomToken()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if token, ok = l.byName[name]; !ok {
			token = t
			l.byName[name] = token
			l.byToken[token] = userFor(name)
		}
		l.mu.Unlock()
	}
	rc := rest.CopyConfig(base)
	rc.BearerToken, rc.BearerTokenFile = token, ""
	return rc, nil
}

// AuthenticateRequest is apiserver.Authenticator: a bearer token made by
// config.
func (l *loopbackIdentities) AuthenticateRequest(r *http.Request) (*apiserver.User, bool, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return nil, false, nil
	}
	l.mu.RLock()
	u := l.byToken[token]
	l.mu.RUnlock()
	return u, u != nil, nil
}

// serviceAccountUser is the user name of a service account in
// kube-system (a controller's, given by manager.Account).
func serviceAccountUser(account string) string {
	return "system:serviceaccount:" + rbac.ControllerNamespace + ":" + account
}
