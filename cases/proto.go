package cases

func protocolCases() []Case { return nil }
