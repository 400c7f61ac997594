package store

// RunCache is runCache for the external tests.
var RunCache = runCache
