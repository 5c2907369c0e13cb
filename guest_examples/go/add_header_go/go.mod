module mwhost/guest_examples/go/add_header_go

go 1.27

require mwhost/sdk v0.0.0

replace mwhost/sdk => ../../../sdk/go
