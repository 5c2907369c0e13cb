module mwhost/tests/guests/go/misbehave

go 1.27

require mwhost/sdk v0.0.0

replace mwhost/sdk => ../../../../sdk/go
