// The KTProvision module; see Documentation.docc.
