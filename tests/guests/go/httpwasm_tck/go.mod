module mwhost/tests/guests/go/httpwasm_tck

go 1.27

require mwhost/guests/go/httpwasm v0.0.0

replace mwhost/guests/go/httpwasm => ../../../../guests/go/httpwasm
