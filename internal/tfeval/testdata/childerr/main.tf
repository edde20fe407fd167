# The child module refers to a local it does not declare: reading any of
# its outputs, or the module as a whole, is an error.
module "child" {
  source = "./child"
}

output "all" {
  value = module.child
}
