module mwhost/sdk

go 1.27
