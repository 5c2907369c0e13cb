module noop

go 1.27
