module github.com/sincere-ml/sincere

go 1.26.8

require gonum.org/v1/gonum v0.17.0

require golang.org/x/sys v0.50.0 // indirect
