# Exercised by tfeval_test.go and, where terraform is installed, planned by
# Terraform itself to compare: count, for_each, a child module, optional
# attributes, validation. Only terraform_data resources: no provider.

variable "n" {
  type    = number
  default = 3
}

variable "zones" {
  type = map(string)
  default = {
    a = "x"
    b = "y"
  }
}

variable "settings" {
  type = object({
    name  = string
    size  = optional(number, 10)
    flags = optional(list(string), [])
  })
  default = { name = "s" }

  validation {
    condition     = var.settings.size > 0
    error_message = "Settings.size must be positive."
  }
}

locals {
  names = [for i in range(var.n) : "n-${i}"]
}

resource "terraform_data" "n" {
  count = var.n
  input = local.names[count.index]
}

resource "terraform_data" "z" {
  for_each = var.zones
  input    = "${each.key}=${each.value}"
}

resource "terraform_data" "set" {
  for_each = toset(["p", "q"])
  input    = upper(each.key)
}

module "child" {
  source = "./child"
  inputs = [terraform_data.n[0].input, terraform_data.n[2].input]
}

output "second" {
  value = terraform_data.n[1].input
}

output "last" {
  value = terraform_data.n[var.n - 1].input
}

output "zone_b" {
  value = terraform_data.z["b"].input
}

output "set_q" {
  value = terraform_data.set["q"].input
}

output "ids" {
  value = [terraform_data.n[0].id, terraform_data.n[2].id]
}

output "settings" {
  value = var.settings
}

output "joined" {
  value = module.child.joined
}

output "child_id" {
  value = module.child.id
}
