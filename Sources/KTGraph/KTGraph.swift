// KTGraph: placeholder until the engines land (see Documentation.docc).
