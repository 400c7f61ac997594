package admin

// NewCommand exposes the command tree to the external tests.
var NewCommand = newCommand
