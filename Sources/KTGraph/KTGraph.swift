// The KTGraph module; see Documentation.docc.
