package store

// RunCache is runCache for the external tests.
var RunCache = runCache

// OpaqueScripts are the SHA1s of the opaque-cookie scripts.
var OpaqueScripts = []string{scriptOpaqueLookup.Hash(), scriptOpaqueBind.Hash(), scriptOpaquePoint.Hash(), scriptOpaqueUnbind.Hash()}
