package storage

// GuaranteedUpdateFrom exposes the hinted update to the external tests.
var GuaranteedUpdateFrom = (*Store).guaranteedUpdate
