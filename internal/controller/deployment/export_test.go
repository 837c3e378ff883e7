package deployment

// TemplateHash exposes templateHash to the server tests, which predict the
// new ReplicaSet's name to provoke a collision.
var TemplateHash = templateHash
