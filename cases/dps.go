package cases

func dpsCases() []Case { return nil }
