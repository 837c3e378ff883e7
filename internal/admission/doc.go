// Package admission holds skiff's built-in admission plugins: the checks and
// mutations the API server applies to writes after defaulting and before
// validation, as upstream's NamespaceLifecycle, Priority, ServiceAccount
// (the token volume), DefaultTolerationSeconds style pod defaults, the
// service IP and node port allocators, and PodSecurity (the Pod Security
// Standards that namespace labels ask for, checked by upstream's
// k8s.io/pod-security-admission library) do.
package admission
