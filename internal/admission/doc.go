// Package admission holds skiff's built-in admission plugins: the checks and
// mutations the API server applies to writes after defaulting and before
// validation, as upstream's NamespaceLifecycle, Priority, ServiceAccount
// (the token volume), DefaultTolerationSeconds style pod defaults, and the
// service IP and node port allocators do.
package admission
