module mwhost/guests/go/httpwasm

go 1.27
