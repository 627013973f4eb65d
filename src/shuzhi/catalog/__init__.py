"""The data resource catalog (政务数据资源目录): resources, fields, attributes, lifecycle."""
